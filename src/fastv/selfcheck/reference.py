"""An independent, cache-free FastV reference: a hand-written loop over decoder layers.

One copy, used by the test suite and by ``fastv doctor`` on the user's own stack.

It shares only the model's weights and layer modules with fastv: masks are built here by hand,
the ranking comes from eager ``output_attentions`` of the unpatched model, and the pruned layers
run on an explicitly gathered subsequence with explicitly gathered cos/sin.

Per-family differences are spelled out here, not taken from fastv: where the decoder sits, rotary
embeddings per layer type (Gemma 3) or per layer (Molmo2), M-RoPE position ids (Qwen-VL),
sliding-window layers (a window over the sequence each layer actually runs on) and bidirectional
image blocks (Gemma 3; Gemma 4: on sliding layers only).

Hybrid decoders (Qwen3.5, LFM2): a recurrent (linear-attention or short-convolution) layer gets no
attention mask, and a pruned one runs on the gathered kept tokens only, so the dropped tokens are
physically absent from its recurrence (masking them would still let them decay and write the state,
or stand in a convolution's window as zeros).
"""

from __future__ import annotations

import inspect

import torch
from transformers.modeling_outputs import BaseModelOutputWithPast

from fastv.compat import decoder_under_model


def language_model(model) -> torch.nn.Module:
    """The decoder stack inside a VLM (``model.model.language_model`` or ``model.model.text_model``; the
    ``model.model`` itself where the release puts it there, as 5.16's Omni thinkers)."""
    direct = decoder_under_model(model)
    if direct is not None:
        return direct
    for attr in ("language_model", "text_model"):
        module = getattr(model.model, attr, None)
        if module is not None and hasattr(module, "layers"):
            return module
    raise AttributeError(f"no decoder found in {type(model).__name__}")


def _language_model_inputs(model, **inputs) -> dict:
    """The keyword arguments the decoder receives for one unpadded sample (unpruned, no cache)."""
    captured = {}

    def grab(_module, _args, kwargs):
        captured.update(kwargs)

    handle = language_model(model).register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**inputs, use_cache=False)
    finally:
        handle.remove()
    return captured


def merged_embeddings(model, **inputs) -> torch.Tensor:
    """The language model's input embeddings (image features scattered in) for one unpadded sample."""
    return decoder_inputs(model, **inputs)[0]


def deepstack_inputs(model, **inputs) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
    """Qwen3-VL's DeepStack inputs for one unpadded sample: the (n,) visual-token mask and, per early
    layer, the feature rows added to those tokens after it. None for models without DeepStack."""
    return decoder_inputs(model, **inputs)[1]


def decoder_inputs(model, **inputs) -> tuple[torch.Tensor, tuple[torch.Tensor, list[torch.Tensor]] | None]:
    """``merged_embeddings`` and ``deepstack_inputs`` from one forward."""
    captured = _language_model_inputs(model, **inputs)
    mask, features = captured.get("visual_pos_masks"), captured.get("deepstack_visual_embeds")
    deepstack = None if mask is None or features is None else (mask[0], list(features))
    return captured["inputs_embeds"], deepstack


def _add_deepstack(hidden: torch.Tensor, positions: torch.Tensor, layer: int, deepstack) -> torch.Tensor:
    """After early layer ``layer``: add each visual token's own feature row; ``positions`` are the current
    sequence's indices into the full one (all of them, or the kept ones)."""
    if deepstack is None or layer >= len(deepstack[1]):
        return hidden
    mask, features = deepstack
    mask = torch.cat([mask.to(positions.device), mask.new_zeros(max(0, int(positions.max()) + 1 - mask.numel()))])
    rows = mask.long().cumsum(0) - 1
    visual = mask[positions]
    hidden = hidden.clone()
    hidden[0, visual] = hidden[0, visual] + features[layer][rows[positions][visual]].to(hidden.dtype)
    return hidden


def _mask(
    n: int, dtype: torch.dtype, window: int | None = None, blocks: torch.Tensor | None = None, device=None
) -> torch.Tensor:
    """Additive (1, 1, n, n) mask: causal, within ``window`` rows back, bidirectional inside ``blocks``."""
    index = torch.arange(n, device=device)
    allowed = index[None, :] <= index[:, None]
    if blocks is not None:
        allowed |= (blocks[:, None] == blocks[None, :]) & (blocks[:, None] >= 0)
    if window is not None:
        allowed &= index[None, :] > index[:, None] - window
    return torch.zeros(n, n, dtype=dtype, device=device).masked_fill(~allowed, torch.finfo(dtype).min)[None, None]


# ``layer_types`` values of layers that mix tokens through a recurrent state, not attention (no mask, no map).
RECURRENT_LAYER_TYPES = ("linear_attention", "conv")


# Gemma 4's text decoder: image blocks attend bidirectionally on sliding layers only (full layers stay causal),
# every layer takes a ``shared_kv_states`` dict, and the outer forward soft-caps the logits with the text
# config's ``final_logit_softcapping``.
GEMMA4_TEXT_TYPES = ("gemma4_text",)


def _layer_types(text_config, n_layers: int) -> list[str]:
    types = getattr(text_config, "layer_types", None)
    if types is None:  # Mistral-style: one window (or none) for every layer
        window = getattr(text_config, "sliding_window", None)
        types = ["sliding_attention" if window is not None else "full_attention"] * n_layers
    return list(types)


def _rotary(lm, embeds: torch.Tensor, positions: torch.Tensor, layer_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    rotary = lm.rotary_emb if hasattr(lm, "rotary_emb") else lm.pos_emb  # LFM2-MoE calls it pos_emb
    if "layer_type" in inspect.signature(rotary.forward).parameters:
        return rotary(embeds, positions, layer_type)
    return rotary(embeds, position_ids=positions)


def _layer_rotary(lm, embeds: torch.Tensor, positions: torch.Tensor, types: list[str]) -> list[tuple]:
    """Each layer's cos/sin: by layer type (Gemma 3), or per layer from Molmo2's scaled / unscaled rotary
    (``rope_types``, its ``rope_scaling_layers``)."""
    kinds = getattr(lm, "rope_types", None)
    if kinds is None:
        by_type = {t: _rotary(lm, embeds, positions, t) for t in set(types)}
        return [by_type[t] for t in types]
    modules = {"scaled": lm.rotary_emb, "unscaled": lm.rotary_emb_unscaled}
    tables = {kind: modules[kind](embeds, position_ids=positions) for kind in set(kinds)}
    return [tables[kind] for kind in kinds]


def reference_logits(
    model,
    embeds: torch.Tensor,
    kept: torch.Tensor,
    k: int,
    position_ids: torch.Tensor | None = None,
    blocks: torch.Tensor | None = None,
    deepstack: tuple[torch.Tensor, list[torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Logits at the kept positions of one sample: layers < k see all n tokens, layers >= k the kept ones.

    position_ids: the n tokens' positions as the model's rotary embedding takes them ((1, n) by default;
    (3, 1, n) for M-RoPE). blocks: (n,) bidirectional image-block ids, -1 elsewhere (Gemma 3 prefill).
    deepstack: ``deepstack_inputs`` (Qwen3-VL): features added to visual tokens after the early layers.
    """
    lm = language_model(model)
    config = lm.config
    n = embeds.shape[1]
    device = embeds.device
    kept = kept.to(device)
    blocks = None if blocks is None else blocks.to(device)
    positions = torch.arange(n, device=device)[None] if position_ids is None else position_ids.to(device)
    types = _layer_types(config, len(lm.layers))
    windows = [config.sliding_window if t == "sliding_attention" else None for t in types]
    gemma4 = config.model_type in GEMMA4_TEXT_TYPES
    with_blocks = [not gemma4 or t == "sliding_attention" for t in types]
    extra = {"shared_kv_states": {}} if gemma4 else {}
    with torch.no_grad():
        rotary = _layer_rotary(lm, embeds, positions, types)
        hidden = embeds

        def layer_mask(i: int, length: int, layer_blocks: torch.Tensor | None) -> torch.Tensor | None:
            if types[i] in RECURRENT_LAYER_TYPES:
                return None
            return _mask(length, hidden.dtype, windows[i], layer_blocks if with_blocks[i] else None, device)

        for i, layer in enumerate(lm.layers[:k]):
            mask = layer_mask(i, n, blocks)
            hidden = layer(hidden, attention_mask=mask, position_embeddings=rotary[i], **extra)
            hidden = _add_deepstack(hidden, torch.arange(n, device=device), i, deepstack)
        hidden = hidden[:, kept]
        kept_blocks = None if blocks is None else blocks[kept]
        for i, layer in enumerate(lm.layers[k:], start=k):
            cos, sin = rotary[i]
            mask = layer_mask(i, len(kept), kept_blocks)
            hidden = layer(
                hidden, attention_mask=mask, position_embeddings=(cos[..., kept, :], sin[..., kept, :]), **extra
            )
            hidden = _add_deepstack(hidden, kept, i, deepstack)
        return model_head(model, final_norm(lm)(hidden))


def final_norm(lm) -> torch.nn.Module:
    """The decoder's last norm (``norm``; LFM2 calls it ``embedding_norm`` and applies it after the layers)."""
    return lm.norm if hasattr(lm, "norm") else lm.embedding_norm


class _DecoderOutput(BaseModelOutputWithPast):
    """What the outer forward reads from its inner model: the hidden states, and None for anything else
    (caches, attentions, image features, rope deltas) that it copies into its own output."""

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return None


class _GivenHiddenStates(torch.nn.Module):
    """Stands in for a VLM's inner model for one call: returns given final hidden states, and lends the
    inner model's attributes to anything the outer forward reads from it."""

    def __init__(self, inner: torch.nn.Module, hidden: torch.Tensor):
        super().__init__()
        object.__setattr__(self, "_inner", inner)
        self.hidden = hidden

    def forward(self, *args, **kwargs) -> _DecoderOutput:
        return _DecoderOutput(last_hidden_state=self.hidden)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(object.__getattribute__(self, "_inner"), name)


def model_head(model, hidden: torch.Tensor) -> torch.Tensor:
    """Logits from final (normed) hidden states through the model's own outer forward.

    The outer ``*ForConditionalGeneration.forward`` owns what follows the decoder: ``lm_head``, logit
    scales (Aya Vision from transformers 5.25), soft-caps (Gemma 4, PaliGemma 2) and whatever a release
    adds. Re-implementing it here would make the reference disagree with a correct patch at the next
    such change, so the inner model is swapped for one call for a stand-in that returns ``hidden``.
    """
    inner = model.model
    model.model = _GivenHiddenStates(inner, hidden)
    try:
        ids = torch.zeros(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        return model(input_ids=ids, use_cache=False).logits
    finally:
        model.model = inner


def reference_scores(model, inputs: dict, k: int, rank: str) -> torch.Tensor:
    """(n,) head-averaged attention each token gets from layer k-1's eager attention map of the unpatched
    model: the last query's row (``last_token``) or the mean over all queries (``mean``)."""
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(**inputs, output_attentions=True, use_cache=False)
    finally:
        model.set_attn_implementation(previous)
    index = k - 1
    lm = language_model(model)
    if len(out.attentions) != len(lm.layers):  # hybrid decoder: maps of attention layers only
        types = _layer_types(lm.config, len(lm.layers))
        index = sum(t not in RECURRENT_LAYER_TYPES for t in types[: k - 1])
    attention = out.attentions[index][0].float().mean(dim=0).cpu()  # (n, n), head-averaged
    return attention[-1] if rank == "last_token" else attention.mean(dim=0)


def reference_kept(
    model,
    inputs: dict,
    image_mask: torch.Tensor,
    k: int,
    n_drop: int | dict[int, int],
    rank: str,
    segments: torch.Tensor | None = None,
    scores: torch.Tensor | None = None,
) -> torch.Tensor:
    """Kept positions of one unpadded sample from full eager attention maps (the unoptimised definition).

    With ``segments`` ((n,) image / frame id per image token), ``n_drop`` maps segment id -> count and
    each segment is ranked on its own. ``scores``: precomputed ``reference_scores``.
    """
    scores = reference_scores(model, inputs, k, rank) if scores is None else scores
    image_mask = image_mask.cpu()
    segments = None if segments is None else segments.cpu()
    groups = {0: image_mask} if segments is None else {s: image_mask & (segments == s) for s in n_drop}
    counts = {0: n_drop} if segments is None else n_drop
    keep = torch.ones(image_mask.numel(), dtype=torch.bool)
    for s, members in groups.items():
        positions = members.nonzero().squeeze(1)
        order = torch.sort(scores[positions], stable=True).indices
        keep[positions[order[: counts[s]]]] = False
    return keep.nonzero().squeeze(1)
