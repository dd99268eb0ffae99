"""Aya Vision and Command A Vision (``aya_vision``, ``cohere2_vision``): SigLIP tiles, pixel-shuffled by
the projector into image placeholders, and a Cohere2 decoder (Command R7B / Command A).

Cohere2 interleaves sliding-window layers, which apply RoPE, with full-attention layers, which apply
*no* positional encoding at all (``Cohere2Attention`` rotates only when its ``sliding_window`` is
set). The ranking layer's queries and keys must be rebuilt the same way, or the first prefill's
adapter check (recomputed keys vs the keys the layer cached) refuses the run. Cohere2's rotary
rotates interleaved pairs; the module's own ``apply_rotary_pos_emb`` does that. A Cohere (v1)
decoder (no sliding layers, optional q/k layer norms, RoPE everywhere) needs nothing more.

Layout (show-keep / analyze): an image is cut into a processor-chosen ``cols x rows`` grid of tiles of
the stretched image, row-major, then a whole-image thumbnail when tiled. The tile markers (Aya's
``TILE_i`` / ``TILE_GLOBAL``, Command A Vision's line break after every tile) are text tokens, so each
tile's ``(image_size / patch_size / downsample_factor)^2`` image tokens are just its pixel-shuffled patch
grid, row-major (the projector's ``pixel_shuffle`` merges ``downsample_factor^2`` neighbouring patches).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from fastv.errors import FastVError
from fastv.families.base import Family, PositionEmbeddings
from fastv.families.layout import LayoutRequest, VisualLayout, option, pick_grids, tiled_layouts
from fastv.families.registry import register_family


def applies_rope(attention: nn.Module) -> bool:
    """Whether the layer rotates queries and keys: not on Cohere2's full-attention (non-sliding) layers."""
    model_type = getattr(getattr(attention, "config", None), "model_type", None)
    return not (model_type == "cohere2" and getattr(attention, "sliding_window", None) is None)


class CohereFamily(Family):
    """Skips RoPE where the Cohere2 layer does (its full-attention layers)."""

    def queries(
        self, attention: nn.Module, hidden: torch.Tensor, position_embeddings: PositionEmbeddings
    ) -> torch.Tensor:
        if applies_rope(attention):
            return super().queries(attention, hidden, position_embeddings)
        return self._project(attention, hidden, "q_proj", "q_norm")

    def keys(self, attention: nn.Module, hidden: torch.Tensor, position_embeddings: PositionEmbeddings) -> torch.Tensor:
        if applies_rope(attention):
            return super().keys(attention, hidden, position_embeddings)
        return self._project(attention, hidden, "k_proj", "k_norm")


class AyaVisionFamily(CohereFamily):
    name = "aya_vision"
    model_types = ("aya_vision",)
    model_classes = ("AyaVisionForConditionalGeneration", "AyaVisionModel")

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import get_optimal_tiled_canvas

        return cohere_vision_layout(request, get_optimal_tiled_canvas)


class Cohere2VisionFamily(CohereFamily):
    name = "cohere2_vision"
    model_types = ("cohere2_vision",)
    model_classes = ("Cohere2VisionForConditionalGeneration", "Cohere2VisionModel")

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return cohere_vision_layout(request, cohere2_vision_canvas)


# --- which image region each visual token covers (for fastv show-keep / analyze) ---------------------


def cohere_vision_layout(request: LayoutRequest, canvas) -> list[VisualLayout]:
    """Tiles (``canvas(size, tile, min, max) -> (cols, rows)``, the image processor's choice) then a thumbnail.

    Both processors tile by default at call time (Aya's processor passes ``crop_to_patches=True`` to an
    image processor whose own default is False), so the prompt's ``pixel_values`` decide when present.
    """
    processor = request.image_processor
    if processor is None:
        raise FastVError(f"The {request.config.model_type} layout needs the image processor (for the tiling).")
    vision = request.config.vision_config
    side = vision.image_size // vision.patch_size // int(request.config.downsample_factor)
    tile = option(processor, "size")
    tile_hw = (int(option(tile, "height")), int(option(tile, "width")))
    low, high = int(option(processor, "min_patches") or 1), int(option(processor, "max_patches") or 1)
    tiled = [
        tuple(canvas((int(h), int(w)), tile_hw, low, high)) if high > 1 else (1, 1) for h, w in request.image_sizes
    ]
    return tiled_layouts(request, side, pick_grids(request, tiled, default=True))


def cohere2_vision_canvas(size: tuple[int, int], tile: tuple[int, int], low: int, high: int) -> tuple[int, int]:
    """``Cohere2VisionImageProcessor``'s tile grid ``(cols, rows)``, copied: its module needs torchvision.

    The smallest grid (by tile count, up to ``high``) that holds the image without downscaling, else the
    one that downscales least. ``low`` is unused there too.
    """
    grids = sorted(((c, r) for c in range(1, high + 1) for r in range(1, high + 1) if c * r <= high), key=math.prod)
    scales = (np.array(grids) * tile[0] / np.stack([size[1], size[0]])).min(axis=-1)
    if np.all(scales < 1):
        return grids[int(np.argmax(scales))]
    return grids[int(np.argmin(np.where(scales < 1.0, 10e9, scales)))]


register_family(AyaVisionFamily())
register_family(Cohere2VisionFamily())
