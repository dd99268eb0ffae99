"""``apply`` / ``remove``: FastV as hooks on a stock transformers model.

How one prefill goes (``L`` decoder layers, pruning from layer ``k``):
  1. A pre-hook on the outer model reads ``input_ids`` / ``attention_mask`` (the decoder only ever
     sees embeddings) and marks image positions and padding.
  2. A forward hook on layer ``k-1``'s attention ranks image tokens from the queries it needs and
     the keys layer ``k-1`` just wrote to the KV cache (recomputed only when there is no cache).
  3. Pre-hooks on layers ``k..L-1`` swap in the kept hidden states, their original positions
     (cos/sin and position ids) and a mask sized for the shorter sequence. The decoder passes the
     same full-length arguments to every layer, so every pruned layer needs the sliced ones.
During cached decoding, layers ``>= k`` hold only kept tokens; their pre-hooks rebuild the mask
for that shorter cache. The first attention layer is never pruned (layer ``k-1`` attends, so it is
at most ``k-1``), so every "past length" transformers reads stays the full one and new tokens get
their original positions.

Hybrid decoders (Qwen3.5's Gated DeltaNet, LFM2's short convolutions): a recurrent layer ``>= k``
runs its recurrence over the kept tokens only, in order, with a padding mask of the re-packed batch,
so the fixed-size state it caches continues exactly in decoding. Layer ``k-1`` must attend.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers.masking_utils import (
    blockwise_overlay,
    create_causal_mask,
    create_recurrent_attention_mask,
    create_sliding_window_causal_mask,
    sliding_window_overlay,
)

from fastv.compat import bind_arguments, find_cache, warn_if_untested, with_cache
from fastv.config import FastVConfig
from fastv.core import KeepPlan, gather_positions, gather_sequence, plan_keep, segment_drops
from fastv.core.ranking import last_token_scores, mean_query_scores, random_scores
from fastv.errors import FastVError
from fastv.families import Family, family_for
from fastv.guards import check_adapter_keys, inside_forward_of, reject_compiled, reject_compiled_hooked
from fastv.loss import kept_loss, with_loss
from fastv.parallel import average_over_all_heads, head_shard_group

_ATTR = "_fastv_patch"
_PRUNED_CACHE = "_fastv_pruned"  # set on a KV cache at its prefill: whether layers >= k hold only kept tokens


@dataclass
class _Call:
    """State of one forward call of the patched model."""

    mode: str  # "prefill" | "decode"
    input_ids: torch.Tensor | None
    attention_mask: torch.Tensor | None
    valid: torch.Tensor | None = None  # (B, n) real tokens
    prunable: torch.Tensor | None = None  # (B, n) image / video tokens
    segments: torch.Tensor | None = None  # (B, n) image / frame id of prunable tokens (budget="per_image")
    blocks: torch.Tensor | None = None  # (B, n) bidirectional image-block ids (Gemma 3), -1 elsewhere
    inputs: dict = field(default_factory=dict)  # the outer forward's keyword arguments
    plan: KeepPlan | None = None
    pruned: bool = False  # layer k has swapped in the kept tokens: the decoder's hidden states are the pruned ones
    entered: bool = False  # the language model has run for this call (it may run once)
    labels: torch.Tensor | None = None  # taken from the call: the loss is computed over the kept positions
    swapped: dict[int, Any] = field(default_factory=dict)  # id(full-length arg) -> pruned version
    masks: dict[Any, Any] = field(default_factory=dict)  # (sliding window, blocks) or "recurrent" -> mask


@dataclass
class _Session:
    """A KV cache whose layers >= k hold only the tokens kept at its prefill."""

    cache: weakref.ReferenceType
    full_length: int
    plan: KeepPlan


class _Patch:
    """Everything ``apply`` attached to one model, so ``remove`` can take it all back."""

    def __init__(self, model: nn.Module, config: FastVConfig, family: Family) -> None:
        self.config = config
        self.family = family
        self.model_ref = weakref.ref(model)
        self.language_model = family.language_model(model)
        self.text_config = family.text_config(self.language_model)
        self.layers = family.decoder_layers(self.language_model)
        # Hybrid decoders: layers with a recurrent state instead of a KV cache (never the ranking layer).
        self.recurrent = frozenset(i for i in range(len(self.layers)) if family.is_recurrent(i, self.text_config))
        # The layer whose KV length is the full sequence's: the first attention layer (never pruned).
        self.length_layer = family.first_attention_layer(self.language_model) or 0
        self.handles: list[torch.utils.hooks.RemovableHandle] = []
        self.call: _Call | None = None
        self.session: _Session | None = None
        self.last_keep: list[torch.Tensor] | None = None
        self.adapter_checked = False  # the family adapter's keys were compared with the layer's own

    def __getstate__(self) -> dict:
        """Pickle the setting and the hooks, not per-call state or weak references (a pickled, patched
        model loads patched; the first call re-binds it)."""
        state = dict(self.__dict__)
        state.update(model_ref=None, call=None, session=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.model_ref = _no_model

    # --- hooks -----------------------------------------------------------------------------------
    def install(self, model: nn.Module) -> None:
        k = self.config.k
        self.handles.append(model.register_forward_pre_hook(self._begin_call, with_kwargs=True))
        self.handles.append(model.register_forward_hook(self._end_call, always_call=True))
        self.handles.append(self.language_model.register_forward_pre_hook(self._enter_language_model))
        rank_attention = self.family.attention(self.layers[k - 1])
        self.head_group = head_shard_group(rank_attention)  # tensor parallel: ranks must rank alike
        self.rank_window = self.family.sliding_window(self.layers[k - 1], self.text_config)
        self.rank_blocks = self.family.blocks_in_layer(self.layers[k - 1], self.text_config)
        self.handles.append(rank_attention.register_forward_hook(self._rank, with_kwargs=True))
        self.handles += self.family.patch_language_model(self.language_model, self._pruned_plan)
        for layer_idx in range(k, len(self.layers)):
            hook = _PrunedLayerHook(self, layer_idx)
            self.handles.append(self.layers[layer_idx].register_forward_pre_hook(hook, with_kwargs=True))

    def hooked_modules(self) -> list[nn.Module]:
        """The modules ``install`` hooks besides the outer model (whose checks come first, in ``apply``)."""
        k = self.config.k
        return [self.language_model, self.family.attention(self.layers[k - 1]), *self.layers[k:]]

    def _pruned_plan(self) -> KeepPlan | None:
        """The running prefill's plan once the decoder's hidden states hold only the kept tokens (layer k's
        pre-hook has swapped them in), else None. Decided by this call's state, never by sequence widths:
        a re-packed batch whose longest row dropped nothing is exactly as wide as the full one."""
        call = self.call
        return call.plan if call is not None and call.mode == "prefill" and call.pruned else None

    def uninstall(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.call = self.session = None

    def _begin_call(self, model: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        self.model_ref = weakref.ref(model)  # this model, also after a deep copy or unpickling
        named = bind_arguments(model, args, kwargs)
        labels = named.get("labels")
        if labels is not None and "labels" not in kwargs:
            raise FastVError("Pass labels as a keyword argument (labels=...) to a model patched with FastV.")
        self.call = None
        self._open_call(model, named)
        if labels is None:
            return None
        self.call.labels = kwargs.pop("labels")  # the model's own loss would pair pruned logits with full labels
        return args, kwargs

    def _open_call(self, model: nn.Module, named: dict) -> None:
        input_ids, attention_mask = named.get("input_ids"), named.get("attention_mask")
        cache = find_cache(named)
        _reject_static_cache(cache)
        past = cache.get_seq_length() if cache is not None else 0
        if past == 0:
            self.call = _Call("prefill", input_ids, attention_mask, inputs=named)
            self._plan_inputs(model)
            return
        q_len = input_ids.shape[1] if input_ids is not None else named["inputs_embeds"].shape[1]
        if q_len != 1:
            raise FastVError(
                f"FastV got {q_len} new tokens onto a KV cache already holding {past}: chunked prefill, a second "
                "prefill onto a pruned cache and assisted/speculative decoding cannot be made correct, because "
                "the pruned layers' cache no longer matches. Start a new cache (no cache argument) per prompt, "
                "or call fastv.remove(model) first."
            )
        self.call = _Call("decode", input_ids, attention_mask)

    def _end_call(self, model: nn.Module, args: tuple, output: Any) -> Any:
        call, self.call = self.call, None
        if call is None or call.labels is None or output is None:
            return None
        logits = output.logits if hasattr(output, "logits") else output[0]
        plan = call.plan if call.mode == "prefill" else None
        return with_loss(output, kept_loss(model, logits, call.labels, plan))

    def _enter_language_model(self, *_: Any) -> None:
        """One language-model run per call of the patched model, from inside it: the state of a call that
        was interrupted (an exception, KeyboardInterrupt) must never reach a later direct call."""
        call, model = self.call, self.model_ref()
        if call is None or call.entered or model is None or not inside_forward_of(model):
            self.call = None
            raise _bypass_error(self)
        call.entered = True

    def _plan_inputs(self, model: nn.Module) -> None:
        call = self.call
        if call.input_ids is None:
            raise FastVError(
                "FastV needs `input_ids` at prefill to find the image tokens (the decoder only sees embeddings). "
                "Pass input_ids (with pixel values) instead of inputs_embeds."
            )
        self.family.check_inputs(model, call.inputs)
        ids = call.input_ids
        valid = torch.ones_like(ids, dtype=torch.bool) if call.attention_mask is None else call.attention_mask.bool()
        if valid.shape != ids.shape:
            raise FastVError(f"attention_mask {tuple(valid.shape)} does not match input_ids {tuple(ids.shape)}.")
        if not bool(valid[:, -1].all()):
            raise FastVError(
                "FastV needs left padding: the last position of every sample must be a real token (it ranks the "
                "image tokens by that token's attention). Set tokenizer.padding_side = 'left' (or "
                "processor.tokenizer.padding_side = 'left')."
            )
        prunable = self.family.prunable_mask(model, ids) & valid
        prunable[:, -1] = False  # the last token is the ranking query and yields the next-token logits
        if not bool(prunable.any()):  # the error path alone re-reads the last column (no extra sync per prefill)
            image_last = bool((self.family.prunable_mask(model, ids) & valid)[:, -1].any())
            raise _nothing_to_prune(self.family.prunable_token_ids(model.config), image_last)
        call.valid, call.prunable = valid, prunable
        call.blocks = self.family.block_ids(model, ids, call.inputs)
        if self.config.budget == "per_image":
            call.segments = self.family.segments(model, ids, prunable, call.inputs)
            call.segments = call.segments.masked_fill(~prunable, -1)

    def _rank(self, attention: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        call = self.call
        if call is None:
            raise _bypass_error(self)
        if call.mode != "prefill":
            return
        valid, prunable = call.valid, call.prunable
        if call.segments is None:
            n_drop = [self.config.n_dropped(int(count)) for count in prunable.sum(dim=1)]
            total = sum(n_drop)
        else:
            n_drop = segment_drops(call.segments, self.config.n_dropped)
            total = sum(sum(counts.values()) for counts in n_drop)
        if total:
            scores = self._scores(attention, kwargs, valid)
            call.plan = plan_keep(scores, prunable, valid, n_drop, call.segments)
            kept = [call.plan.kept(b) for b in range(len(valid))]
        else:  # nothing to drop: leave the computation untouched (bit-identical to the unpatched model)
            call.plan = None
            kept = [row.nonzero().squeeze(1) for row in valid]
        pads = (~valid).sum(dim=1)
        self.last_keep = [positions - pads[b] for b, positions in enumerate(kept)]

    def _scores(self, attention: nn.Module, kwargs: dict, valid: torch.Tensor) -> torch.Tensor:
        if self.config.rank == "random":
            return random_scores(self.call.input_ids, valid, self.config.seed)
        hidden = kwargs["hidden_states"]
        position_embeddings = kwargs["position_embeddings"]
        family = self.family
        cache = find_cache(kwargs)
        keys = _cached_keys(cache, self.config.k - 1, hidden.shape[1])
        if keys is None:
            keys = family.keys(attention, hidden, position_embeddings)
            tail = None if self.adapter_checked else _cached_key_tail(cache, self.config.k - 1, hidden.shape[1])
            if tail is not None:  # a sliding-window cache kept only the prompt's last keys: check those
                check_adapter_keys(family, attention, self.config.k - 1, keys[..., -tail.shape[-2] :, :], tail)
                self.adapter_checked = True
        elif not self.adapter_checked:  # once per patch: the adapter must rebuild what the layer cached
            check_adapter_keys(
                family, attention, self.config.k - 1, family.keys(attention, hidden, position_embeddings), keys
            )
            self.adapter_checked = True
        scaling, softcap, window = family.scaling(attention), family.softcap(attention), self.rank_window
        if self.config.rank == "last_token":
            cos, sin = position_embeddings
            queries = family.queries(attention, hidden[:, -1:], (cos[..., -1:, :], sin[..., -1:, :]))
            scores = last_token_scores(queries, keys, scaling, valid, window=window, softcap=softcap)
        else:
            queries = family.queries(attention, hidden, position_embeddings)
            blocks = self.call.blocks if self.rank_blocks else None
            scores = mean_query_scores(queries, keys, scaling, valid, window=window, blocks=blocks, softcap=softcap)
        if self.head_group is not None:
            scores = average_over_all_heads(scores, queries.shape[1], self.head_group)
        return scores


class _PrunedLayerHook:
    """Pre-hook of a layer >= k: feed it the kept tokens, their positions and a matching mask."""

    def __init__(self, patch: _Patch, layer_idx: int) -> None:
        self.patch = patch
        self.layer_idx = layer_idx
        layer, family, text_config = patch.layers[layer_idx], patch.family, patch.text_config
        self.recurrent = layer_idx in patch.recurrent  # linear attention / convolution: a 2-D padding mask, no KV
        self.sliding_window = None if self.recurrent else family.sliding_window(layer, text_config)
        # whether this layer applies the bidirectional image blocks (Gemma 3: all layers; Gemma 4: sliding ones)
        self.blocks = family.blocks_in_layer(layer, text_config)

    def __call__(self, layer: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        patch, call = self.patch, self.patch.call
        if call is None:
            raise _bypass_error(patch)
        hidden = args[0] if args else kwargs["hidden_states"]
        cache = find_cache(kwargs)
        if call.mode == "prefill":
            plan = call.plan
            if self.layer_idx == patch.config.k:
                pruned_cache = cache is not None and plan is not None
                if cache is not None:
                    setattr(cache, _PRUNED_CACHE, pruned_cache)
                patch.session = _Session(weakref.ref(cache), hidden.shape[1], plan) if pruned_cache else None
                if plan is not None:
                    hidden = gather_sequence(hidden, plan.indices, seq_dim=1)
                    call.pruned = True
            if plan is None:
                return None
            self._swap_positions(call, kwargs, plan)
            mask_2d = plan.valid
        else:
            session = patch.session
            if self.recurrent:  # one real token onto a fixed-size state: nothing to mask or resize
                return None
            if session is None or session.cache() is not cache:
                _check_unpruned(cache, self.layer_idx, patch.length_layer)
                return None
            mask_2d = self._decode_mask(call, session, cache)
        if self.recurrent:
            kwargs["attention_mask"] = self._padding_mask(call, hidden, mask_2d.to(hidden.device), cache)
        else:
            kwargs["attention_mask"] = self._mask(call, hidden, mask_2d.to(hidden.device), cache)
        args = (hidden, *args[1:]) if args else ()
        if not args:
            kwargs["hidden_states"] = hidden
        return args, kwargs

    def _swap_positions(self, call: _Call, kwargs: dict, plan: KeepPlan) -> None:
        """Replace full-length cos/sin and position ids by their kept rows (original positions)."""
        embeddings = kwargs.get("position_embeddings")
        if embeddings is not None:
            key = id(embeddings[0])
            if key not in call.swapped:
                call.swapped[key] = tuple(gather_sequence(t, plan.indices, seq_dim=-2) for t in embeddings)
            kwargs["position_embeddings"] = call.swapped[key]
        position_ids = kwargs.get("position_ids")
        if position_ids is not None:
            key = id(position_ids)
            if key not in call.swapped:
                call.swapped[key] = gather_positions(position_ids, plan.indices)
            kwargs["position_ids"] = call.swapped[key]

    def _decode_mask(self, call: _Call, session: _Session, cache) -> torch.Tensor:
        """2-D mask over the pruned cache plus every token added since the prefill."""
        layer_length = cache.layers[self.layer_idx].get_seq_length()
        added = layer_length - session.plan.length  # decoded tokens already cached in this layer
        # The first attention layer is never pruned and has already appended this step's token.
        full = cache.layers[self.patch.length_layer].get_seq_length()
        if added < 0 or full - session.full_length != added + 1:
            raise FastVError(
                f"Layer {self.layer_idx}'s KV cache holds {layer_length} tokens, inconsistent with the pruned "
                "prefill FastV recorded. Was the cache edited (cropped, reordered for beam search, reused)? "
                "Start a new cache per prompt."
            )
        batch = session.plan.valid.shape[0]
        if call.attention_mask is None:
            tail = torch.ones(batch, added + 1, dtype=torch.bool, device=session.plan.valid.device)
        else:
            tail = call.attention_mask[:, session.full_length :].bool().to(session.plan.valid.device)
        return torch.cat([session.plan.valid, tail], dim=1)

    def _padding_mask(self, call: _Call, hidden: torch.Tensor, mask_2d: torch.Tensor, cache) -> Any:
        """A recurrent layer's mask: the 2-D padding mask of the re-packed kept sequence, as transformers
        builds it (None when no row is padded). Padding rows are zeroed before the recurrence, so left
        padding leaves the state of every sample as if it ran alone."""
        if "recurrent" not in call.masks:
            kwargs = with_cache(cache, config=self.patch.text_config, inputs_embeds=hidden, attention_mask=mask_2d)
            call.masks["recurrent"] = create_recurrent_attention_mask(**kwargs)
        return call.masks["recurrent"]

    def _mask(self, call: _Call, hidden: torch.Tensor, mask_2d: torch.Tensor, cache) -> Any:
        """The mask of this layer's type over the pruned sequence, built once per call and type.

        A sliding window counts kept tokens, not original positions: pruned layers run on the kept
        sequence, and a sliding-window KV cache keeps the last ``window`` entries it was given, so
        this is the only rule prefill and cached decoding can share.
        """
        window = self.sliding_window
        blocks = call.blocks if call.mode == "prefill" and self.blocks else None
        key = (window, blocks is not None)
        if key not in call.masks:
            kwargs = with_cache(
                cache,
                config=self.patch.text_config,
                inputs_embeds=hidden,
                attention_mask=mask_2d,
                position_ids=None,  # gapped kept positions would read as packed sequences
                layer_idx=self.layer_idx,
            )
            if blocks is not None and call.plan is not None:  # bidirectional image blocks (Gemma 3)
                kept_blocks = gather_sequence(blocks, call.plan.indices, seq_dim=1)
                kept_blocks = kept_blocks.masked_fill(~call.plan.valid, -1)
                if window is None:
                    mask = create_causal_mask(**kwargs, block_sequence_ids=kept_blocks)
                else:
                    mask = create_causal_mask(
                        **kwargs,
                        or_mask_function=blockwise_overlay(kept_blocks),
                        and_mask_function=sliding_window_overlay(window),
                    )
            elif window is None:
                mask = create_causal_mask(**kwargs)
            else:
                mask = create_sliding_window_causal_mask(**kwargs)
            call.masks[key] = mask
        return call.masks[key]


def _cached_keys(cache, layer_idx: int, length: int) -> torch.Tensor | None:
    """Layer ``layer_idx``'s keys from a fresh cache, if it holds exactly this prompt's."""
    if cache is None or layer_idx >= len(getattr(cache, "layers", ())):
        return None
    layer = cache.layers[layer_idx]
    if layer.get_seq_length() != length or getattr(layer, "keys", None) is None:
        return None
    return layer.keys if layer.keys.shape[-2] == length else None


def _cached_key_tail(cache, layer_idx: int, length: int) -> torch.Tensor | None:
    """The last keys of this prompt that a sliding-window cache layer kept (it drops the older ones)."""
    if cache is None or layer_idx >= len(getattr(cache, "layers", ())):
        return None
    layer = cache.layers[layer_idx]
    keys = getattr(layer, "keys", None)
    if layer.get_seq_length() != length or keys is None or not 0 < keys.shape[-2] < length:
        return None
    return keys


def _reject_static_cache(cache) -> None:
    if cache is not None and getattr(cache, "is_compileable", False):
        raise FastVError(
            f"FastV cannot prune into a {type(cache).__name__}: static (compileable) caches give every layer the "
            "same fixed length, so pruned layers would attend to unwritten slots. Use the default DynamicCache "
            "(do not pass cache_implementation='static' to generate)."
        )


def _check_unpruned(cache, layer_idx: int, length_layer: int) -> None:
    """Decoding onto a cache this patch did not record is fine only if no FastV prefill pruned it and this
    layer holds as many tokens as the first attention layer ``length_layer``.

    The mark a prefill left on the cache decides, not lengths alone: a pruned batch whose longest row dropped
    nothing is exactly as long as a full one. (``length_layer`` has already appended this step's token, hence
    the +1.)
    """
    if cache is None:
        return
    pruned = getattr(cache, _PRUNED_CACHE, False)
    if pruned or cache.layers[layer_idx].get_seq_length() + 1 != cache.layers[length_layer].get_seq_length():
        raise FastVError(
            "This KV cache was pruned by another FastV prefill (its layers hold different lengths) and cannot be "
            "continued here. Start a new cache per prompt."
        )


def _check_rank_layer(patch: _Patch, k: int) -> None:
    """Layer k-1 ranks by its attention: in a hybrid decoder it must be an attention layer."""
    if k - 1 not in patch.recurrent:
        return
    valid = [i + 1 for i in range(len(patch.layers) - 1) if i not in patch.recurrent]
    types = getattr(patch.text_config, "layer_types", None)
    kind = repr(types[k - 1]) if types is not None else "recurrent"
    raise FastVError(
        f"FastVConfig.k={k} is not valid for this hybrid decoder: layer k-1={k - 1} is a {kind} layer, which has no "
        f"attention map to rank image tokens by. k-1 must be an attention layer: valid k values are {valid}."
    )


def _no_model() -> None:
    return None


def _nothing_to_prune(token_ids: list[int], image_last: bool) -> FastVError:
    """No prunable token: say whether there is no image token at all, or only one in the last position."""
    if image_last:
        return FastVError(
            f"The only image tokens in input_ids (token ids {token_ids}) are in the last position, and FastV never "
            "drops the last token (its attention row ranks the image tokens and it yields the next-token "
            "logits), so there is nothing to prune. End the prompt with text after the image (e.g. the chat "
            "template's generation prompt), or call fastv.remove(model) to run it unpruned."
        )
    return FastVError(
        f"No image tokens found in input_ids (looked for token ids {token_ids}); FastV has nothing to prune. "
        "Pass a prompt built by the model's processor with an image, or call fastv.remove(model) for text-only use."
    )


def _bypass_error(patch: _Patch) -> FastVError:
    """FastV's hooks saw a language-model (or layer) run without the outer call that opens it: say which way
    the user got there, since `model.forward(...)` and a submodule called alone need different fixes."""
    model = patch.model_ref()
    name = type(model).__name__ if model is not None else "the patched model"
    fix = (
        f"Call the {name} itself, model(**inputs) or model.generate(**inputs), or call fastv.remove(model) first "
        "to run it unpruned."
    )
    if patch.call is not None and patch.call.entered:
        return FastVError(
            f"The language model of {name} ran a second time within one call of the model; FastV prunes one "
            f"language-model pass per call. {fix}"
        )
    if model is not None and inside_forward_of(model):
        return FastVError(
            f"{name}.forward(...) was called directly: that skips the hooks FastV runs when the model is called "
            f"(nn.Module.__call__), so FastV never saw this call's input_ids. {fix}"
        )
    return FastVError(
        f"A submodule of the {name} FastV is applied to (its language model, a decoder layer, or the module "
        f"that wraps them) was called on its own: FastV reads input_ids where the whole model is called, so it "
        f"cannot prune here. {fix}"
    )


# --- public API ------------------------------------------------------------------------------------


def apply(model: nn.Module, config: FastVConfig | None = None) -> nn.Module:
    """Patch ``model`` in place so its forward / generate run FastV(config); returns ``model``.

    Applying to an already patched model raises: call ``remove`` first to change the setting.
    """
    warn_if_untested()
    config = config or FastVConfig()
    if not isinstance(config, FastVConfig):
        raise TypeError(f"config must be a fastv.FastVConfig, got {type(config).__name__}.")
    if is_applied(model):
        raise FastVError(
            f"FastV is already applied to this model ({get_config(model).describe()}). Call fastv.remove(model) "
            "before applying a new setting."
        )
    reject_compiled(model)
    family = family_for(model)
    patch = _Patch(model, config, family)
    family.check_supported(model, patch.language_model)
    n_layers = len(patch.layers)
    if config.k >= n_layers:
        raise FastVError(
            f"FastVConfig.k={config.k} is out of range for a decoder of {n_layers} layers: k must be in "
            f"[1, {n_layers - 1}] so that at least one layer runs on the pruned sequence."
        )
    _check_rank_layer(patch, config.k)
    reject_compiled_hooked(model, patch.hooked_modules())
    patch.install(model)
    setattr(model, _ATTR, patch)
    return model


def remove(model: nn.Module) -> nn.Module:
    """Undo ``apply``: every hook goes, and outputs are again those of the unpatched model."""
    patch = getattr(model, _ATTR, None)
    if patch is None:
        raise FastVError("FastV is not applied to this model; nothing to remove.")
    patch.uninstall()
    delattr(model, _ATTR)
    return model


def is_applied(model: nn.Module) -> bool:
    return getattr(model, _ATTR, None) is not None


def get_config(model: nn.Module) -> FastVConfig:
    patch = getattr(model, _ATTR, None)
    if patch is None:
        raise FastVError("FastV is not applied to this model.")
    return patch.config


def last_keep(model: nn.Module) -> list[torch.Tensor]:
    """Per sample of the last prefill, the sorted prompt positions kept at layer k.

    Positions index the sample's own tokens with its left padding removed, so a sample gives the same
    positions alone or in a padded batch.
    """
    patch = getattr(model, _ATTR, None)
    if patch is None:
        raise FastVError("FastV is not applied to this model; call fastv.apply(model, config) first.")
    if patch.last_keep is None:
        raise FastVError("No prefill has run since fastv.apply; call the model or generate first.")
    return [positions.clone() for positions in patch.last_keep]
