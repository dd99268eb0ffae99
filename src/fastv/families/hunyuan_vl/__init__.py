"""HunYuan-VL (HunyuanOCR): a HunYuan dense decoder with XD-RoPE (4-axis M-RoPE) that rotates queries and
keys *before* their per-head RMS norms (``query_layernorm`` / ``key_layernorm``).

What differs for FastV:

- the order: HunYuan rotates, then normalises, so the adapter does the same (the default adapter
  normalises, then rotates, and the first prefill's key check would refuse it);
- positions: ``rope_parameters["mrope_section"]`` lists the axes (position, width, height, image index).
  Text keeps its sequence index on every axis, image tokens get their grid cell and image ordinal on
  the last three. Pruned layers get the kept tokens' original cos/sin (the generic swap), decoding
  continues after the last prompt position, which the kept text token holds. The cos/sin reach the
  attention per axis ``(axes, B, n, d)`` (5.16: the attention mixes them) or folded ``(B, n, d)`` (5.22 on):
  ``compat.multimodal_rotary`` gives the attention's own rotation, and the swap gathers along dim -2 either way;
- the image span: the processor writes ``<img_start>``, then ``h/2 * (w/2 + 1) + 2`` image placeholders,
  then ``<img_end>``. The vision tower's patch merger fills the placeholders with a begin row, each grid
  row followed by a newline row, and an end row: those rows are the image features themselves (merger
  outputs in image placeholders), so every placeholder is a candidate; the ``<img_start>`` / ``<img_end>``
  text tokens around them never are. Each image is one run of placeholders, so ``budget="per_image"``
  ranks every image on its own.

No video in this model. No token -> image-region layout.
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.families.base import Family, PositionEmbeddings
from fastv.families.registry import register_family


class HunYuanVLFamily(Family):
    name = "hunyuan_vl"
    model_types = ("hunyuan_vl",)
    model_classes = ("HunYuanVLForConditionalGeneration", "HunYuanVLModel")
    prunable_token_attrs = ("image_token_id",)

    def _rotated_then_normed(
        self, attention: nn.Module, hidden: torch.Tensor, position_embeddings: PositionEmbeddings, which: int
    ) -> torch.Tensor:
        """Project (``which`` 0: queries, 1: keys), rotate, then apply the per-head norm, as the layer does."""
        proj, norm = (("q_proj", "query_layernorm"), ("k_proj", "key_layernorm"))[which]
        states = getattr(attention, proj)(hidden).view(*hidden.shape[:-1], -1, attention.head_dim).transpose(1, 2)
        cos, sin = position_embeddings
        rotated = self.rotary(attention)(states, states, cos, sin)[which]
        return getattr(attention, norm)(rotated)

    def queries(
        self, attention: nn.Module, hidden: torch.Tensor, position_embeddings: PositionEmbeddings
    ) -> torch.Tensor:
        return self._rotated_then_normed(attention, hidden, position_embeddings, 0)

    def keys(self, attention: nn.Module, hidden: torch.Tensor, position_embeddings: PositionEmbeddings) -> torch.Tensor:
        return self._rotated_then_normed(attention, hidden, position_embeddings, 1)


register_family(HunYuanVLFamily())
