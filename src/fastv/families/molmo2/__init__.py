"""Molmo2 (Molmo2-4B / 8B on Qwen3, Molmo2-O-7B on OLMo): pooled ViT patches added onto ``<im_patch>``
placeholders, a decoder with q/k RMS norms of two kinds, and one bidirectional block over all image tokens.

What differs for FastV:

- q/k norms: ``qk_norm_type="qwen3"`` normalises each head (the default adapter), ``"olmo"`` the whole
  projection before it is split into heads; the adapter follows ``attention.qk_norm_type``.
  ``norm_after`` (post-norm layers) and per-layer rotary (``rope_scaling_layers``: scaled or unscaled
  cos/sin per layer) need nothing: the ranking layer's own inputs and cos/sin are what it attends with;
- candidates: only ``<im_patch>`` placeholders (``image_patch_id``, which the config also names
  ``image_token_id`` and ``video_token_id``) hold image features. The ``<im_start>``, ``<low_res_im_start>``,
  ``<im_col>``, ``<im_end>`` and ``<frame_start>`` / ``<frame_end>`` tokens are text and never dropped;
- attention: with the processor's ``mm_token_type_ids`` the prefill lets every image-type token (patches
  and those markers, of every image or frame in the prompt) see every other one: one block (id 0),
  kept among the kept tokens in pruned layers and counted by the ``mean`` ranker. Decoding is causal;
- ``budget="per_image"``: an image is a low-res view and a high-res view, each a start token, rows of
  patches separated by ``<im_col>``, and ``<im_end>``; a video frame is ``<frame_start>`` patches
  ``<frame_end>``. Each view or frame (from its start token) is one segment, not each row.

transformers' Molmo2 takes images or a video per prompt, not both. No token -> image-region layout
(the crops overlap and each token pools a processor-chosen set of patches).
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.families.base import Family
from fastv.families.registry import register_family

# Config attributes of the tokens that open an image view or a video frame.
_START_ATTRS = ("image_start_token_id", "low_res_image_start_token_id", "frame_start_token_id")


class Molmo2Family(Family):
    name = "molmo2"
    model_types = ("molmo2",)
    model_classes = ("Molmo2ForConditionalGeneration", "Molmo2Model")
    first_transformers = "5.20.0"
    prunable_token_attrs = ("image_patch_id",)

    def _project(self, attention: nn.Module, hidden: torch.Tensor, proj: str, norm: str) -> torch.Tensor:
        """OLMo-style norms act on the whole projection, before the split into heads."""
        if getattr(attention, "qk_norm_type", "qwen3") != "olmo":
            return super()._project(attention, hidden, proj, norm)
        states = getattr(attention, norm)(getattr(attention, proj)(hidden))
        return states.view(*hidden.shape[:-1], -1, attention.head_dim).transpose(1, 2)

    def block_ids(self, model: nn.Module, input_ids: torch.Tensor, inputs: dict) -> torch.Tensor | None:
        """Block 0 over every ``mm_token_type_ids == 1`` token, as Molmo2's prefill mask; None without types."""
        token_types = inputs.get("mm_token_type_ids")
        if token_types is None:
            return None
        image = token_types.to(input_ids.device) == 1
        return torch.where(image, torch.zeros_like(input_ids), torch.full_like(input_ids, -1))

    def segments(self, model: nn.Module, input_ids: torch.Tensor, prunable: torch.Tensor, inputs: dict) -> torch.Tensor:
        """One segment per image view or video frame: the patches after each start token."""
        starts = [getattr(model.config, attr, None) for attr in _START_ATTRS]
        starts = torch.tensor([int(s) for s in starts if s is not None], device=input_ids.device)
        opened = torch.isin(input_ids, starts)
        if not bool(opened.any()):  # a prompt without the processor's markers: contiguous runs
            return super().segments(model, input_ids, prunable, inputs)
        view = torch.cumsum(opened.long(), dim=1)  # how many views have opened so far
        out = torch.full_like(input_ids, -1)
        for b in range(input_ids.shape[0]):
            if bool(prunable[b].any()):
                out[b, prunable[b]] = torch.unique(view[b][prunable[b]], return_inverse=True)[1]
        return out


register_family(Molmo2Family())
