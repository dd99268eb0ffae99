"""An independent, cache-free FastV reference: a hand-written loop over decoder layers.

It shares only the model's weights and layer modules with fastv: masks are built here by hand,
the ranking comes from eager ``output_attentions`` of the unpatched model, and the pruned layers
run on an explicitly gathered subsequence with explicitly gathered cos/sin.
"""

from __future__ import annotations

import torch


def merged_embeddings(model, **inputs) -> torch.Tensor:
    """The language model's input embeddings (image features scattered in) for one unpadded sample."""
    captured = {}

    def grab(_module, _args, kwargs):
        captured["embeds"] = kwargs["inputs_embeds"]

    language_model = model.model.language_model
    handle = language_model.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**inputs, use_cache=False)
    finally:
        handle.remove()
    return captured["embeds"]


def _causal_mask(n: int, dtype: torch.dtype) -> torch.Tensor:
    allowed = torch.ones(n, n, dtype=torch.bool).tril()
    return torch.zeros(n, n, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)[None, None]


def reference_logits(model, embeds: torch.Tensor, kept: torch.Tensor, k: int) -> torch.Tensor:
    """Logits at the kept positions of one sample: layers < k see all n tokens, layers >= k the kept ones."""
    language_model = model.model.language_model
    n = embeds.shape[1]
    positions = torch.arange(n)[None]
    with torch.no_grad():
        cos, sin = language_model.rotary_emb(embeds, position_ids=positions)
        hidden = embeds
        for layer in language_model.layers[:k]:
            hidden = layer(hidden, attention_mask=_causal_mask(n, hidden.dtype), position_embeddings=(cos, sin))
        hidden, cos, sin = hidden[:, kept], cos[:, kept], sin[:, kept]
        for layer in language_model.layers[k:]:
            mask = _causal_mask(len(kept), hidden.dtype)
            hidden = layer(hidden, attention_mask=mask, position_embeddings=(cos, sin))
        return model.lm_head(language_model.norm(hidden))


def reference_kept(model, inputs: dict, image_mask: torch.Tensor, k: int, n_drop: int, rank: str) -> torch.Tensor:
    """Kept positions of one unpadded sample from full eager attention maps (the unoptimised definition)."""
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(**inputs, output_attentions=True, use_cache=False)
    finally:
        model.set_attn_implementation(previous)
    attention = out.attentions[k - 1][0].float().mean(dim=0)  # (n, n), head-averaged
    scores = attention[-1] if rank == "last_token" else attention.mean(dim=0)
    image_positions = image_mask.nonzero().squeeze(1)
    order = torch.sort(scores[image_positions], stable=True).indices
    dropped = image_positions[order[:n_drop]]
    keep = torch.ones(image_mask.numel(), dtype=torch.bool)
    keep[dropped] = False
    return keep.nonzero().squeeze(1)
