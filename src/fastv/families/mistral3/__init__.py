"""Mistral 3 (Pixtral vision tower): an image's tokens come in rows separated by [IMG_BREAK] text tokens.

The breaks stay (they are text), so an image is not one contiguous run: for ``budget="per_image"``
image ``i`` is the next ``(h / s) * (w / s)`` image tokens (``s`` = patch size x spatial merge), read
from ``image_sizes`` (or, under ``generate``, which hands the forward precomputed per-image
features instead, from their lengths). The Mistral decoder applies ``sliding_window`` to every layer, if set.
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.errors import FastVError
from fastv.families.base import Family
from fastv.families.layout import LayoutRequest, View, VisualLayout, grid_boxes
from fastv.families.registry import register_family


class Mistral3Family(Family):
    name = "mistral3"
    model_types = ("mistral3",)
    model_classes = ("Mistral3ForConditionalGeneration", "Mistral3Model")

    def segments(self, model: nn.Module, input_ids: torch.Tensor, prunable: torch.Tensor, inputs: dict) -> torch.Tensor:
        counts = _image_token_counts(model, inputs)
        if counts is None:
            return super().segments(model, input_ids, prunable, inputs)
        segments = torch.full_like(input_ids, -1)
        image = 0
        for b in range(input_ids.shape[0]):
            positions = prunable[b].nonzero().squeeze(1)
            start, local = 0, 0
            while start < positions.numel() and image < len(counts):
                segments[b, positions[start : start + counts[image]]] = local
                start, local, image = start + counts[image], local + 1, image + 1
        return segments

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return mistral3_layout(request)


def _image_token_counts(model: nn.Module, inputs: dict) -> list[int] | None:
    """Tokens per image, from ``image_sizes`` or, under ``generate``, the precomputed per-image features."""
    sizes = inputs.get("image_sizes")
    if sizes is not None:
        stride = model.config.vision_config.patch_size * model.config.spatial_merge_size
        return (torch.as_tensor(sizes) // stride).prod(dim=-1).tolist()
    encoded = (inputs.get("mm_encoder_outputs") or {}).get("image")
    features = getattr(encoded, "pooler_output", None)
    if isinstance(features, (tuple, list)):
        return [int(f.shape[0]) for f in features]
    return None


# --- which image region each visual token covers (for fastv show-keep / analyze) ---------------------


def mistral3_layout(request: LayoutRequest) -> list[VisualLayout]:
    """Pixtral: a (h / s) x (w / s) grid per image (``image_sizes`` = resized size, s = patch x merge).

    The [IMG_BREAK] / [IMG_END] tokens between rows are text, so the image's tokens are just the grid.
    """
    config = request.config
    stride = config.vision_config.patch_size * getattr(config, "spatial_merge_size", 1)
    resized = request.inputs.get("image_sizes")
    if resized is None or len(resized) != len(request.image_sizes):
        raise FastVError("The Mistral 3 layout needs the processor's `image_sizes` for every image.")
    out = []
    for n, (size, (rh, rw)) in enumerate(zip(request.image_sizes, resized, strict=True)):
        rows, cols = int(rh) // stride, int(rw) // stride
        boxes = tuple(grid_boxes(rows, cols, (0.0, 0.0, float(size[1]), float(size[0]))))
        out.append(
            VisualLayout(
                "image", tuple(size), rows * cols, (View(f"image {n + 1}", 0, tuple(range(rows * cols)), boxes),)
            )
        )
    return out


register_family(Mistral3Family())
