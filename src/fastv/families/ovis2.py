"""Ovis2: each image tile becomes "probabilistic visual tokens" (a softmax over a visual vocabulary,
embedded by a table) in the ``image_token_id`` placeholders, and a Qwen2 decoder, so the default
adapter ranks and prunes as is.

The visual indicator tokens around and between tiles (``visual_indicator_token_ids``) get embeddings
from the same visual table, but they are structure markers, not image content: like LLaVA-NeXT's
newlines or Pixtral's breaks they are never candidates (only ``image_token_id`` is). Each tile is
its own run of image tokens, so ``budget="per_image"`` ranks every tile on its own. No token ->
image-region layout: the processor's tile grid and indicator layout are not modelled here.
"""

from __future__ import annotations

from fastv.families.base import Family


class Ovis2Family(Family):
    name = "ovis2"
    model_types = ("ovis2",)
    model_classes = ("Ovis2ForConditionalGeneration", "Ovis2Model")
    prunable_token_attrs = ("image_token_id",)
