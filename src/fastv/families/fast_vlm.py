"""FastVLM (Apple): LLaVA's layout (image placeholders filled with projected features) around a Qwen2
decoder; the vision tower is a hybrid convolutional FastViTHD whose flattened feature map gives the
image tokens, so the default adapter fits.

No token -> image-region layout: the grid side is the tower's downsampling of the processor's image
(a property of the timm architecture, not of a patch size in the config), which this adapter does not
model.
"""

from __future__ import annotations

from fastv.families.base import Family


class FastVlmFamily(Family):
    name = "fast_vlm"
    model_types = ("fast_vlm",)
    model_classes = ("FastVlmForConditionalGeneration", "FastVlmModel")
