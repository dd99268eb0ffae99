"""FastVLM (Apple): LLaVA's layout (image placeholders filled with projected features) around a Qwen2
decoder; the vision tower is a hybrid convolutional FastViTHD whose flattened feature map gives the
image tokens, so the default adapter fits.

Layout (show-keep / analyze): the tower's (B, C, h, w) map is flattened row-major over the processor's
square crop (CLIP-style resize / centre crop), one token per map cell. The map side is the tower's
downsampling (a property of the timm architecture, not of a config patch size), so it is read from the
prompt: the image tokens per image, a square (else ``image_seq_length``). A cell's box is its stride
block; its convolutional receptive field is wider, as a ViT patch's attention is.
"""

from __future__ import annotations

import math

from fastv.errors import FastVError
from fastv.families.base import Family
from fastv.families.layout import LayoutRequest, View, VisualLayout, grid_boxes, square_view
from fastv.families.registry import register_family


class FastVlmFamily(Family):
    name = "fast_vlm"
    model_types = ("fast_vlm",)
    model_classes = ("FastVlmForConditionalGeneration", "FastVlmModel")

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return fast_vlm_layout(request)


# --- which image region each visual token covers (for fastv show-keep / analyze) ---------------------


def fast_vlm_layout(request: LayoutRequest) -> list[VisualLayout]:
    """A square row-major grid per image over the processor's square view of it."""
    config = request.config
    per_image = int(config.image_seq_length)
    ids = request.inputs.get("input_ids")
    if ids is not None and request.image_sizes:
        per_image = int((ids == int(config.image_token_id)).sum()) // len(request.image_sizes)
    side = math.isqrt(per_image)
    if side * side != per_image:
        raise FastVError(f"FastVLM's {per_image} image tokens per image are not a square feature map.")
    out = []
    for n, size in enumerate(request.image_sizes):
        boxes = tuple(grid_boxes(side, side, square_view(size, request.image_processor)))
        out.append(
            VisualLayout(
                "image", tuple(size), side * side, (View(f"image {n + 1}", 0, tuple(range(side * side)), boxes),)
            )
        )
    return out


register_family(FastVlmFamily())
