"""Ovis2: each image tile becomes "probabilistic visual tokens" (a softmax over a visual vocabulary,
embedded by a table) in the ``image_token_id`` placeholders, and a Qwen2 decoder, so the default
adapter ranks and prunes as is.

The visual indicator tokens around and between tiles (``visual_indicator_token_ids``) get embeddings
from the same visual table, but they are structure markers, not image content: like LLaVA-NeXT's
newlines or Pixtral's breaks they are never candidates (only ``image_token_id`` is). Each tile is
its own run of image tokens, so ``budget="per_image"`` ranks every tile on its own.

Layout (show-keep / analyze): a whole-image thumbnail, then (when the processor tiles) ``cols x rows``
tiles of the stretched image, row-major; the indicators between them are not image tokens. Each tile's
tokens are its patch grid merged ``hidden_stride x hidden_stride``, row-major (transformers' padding of a
patch grid not divisible by the stride pads the wrong axes and fails, so only divisible grids run).
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.core.segments import contiguous_runs, grid_frame_segments
from fastv.errors import FastVError
from fastv.families.base import Family
from fastv.families.layout import LayoutRequest, VisualLayout, option, pick_grids, tiled_layouts
from fastv.families.registry import register_family


class Ovis2_5Family(Family):
    """Ovis2.5: Ovis2's probabilistic visual tokens over a NaViT-style tower (Qwen-VL packed patches and
    ``grid_thw``, 2x2 merge), a Qwen3 decoder with 1-D positions, and images and videos between start / end
    markers that carry visual-indicator embeddings (the markers are not candidates: only ``image_token_id``
    and ``video_token_id`` are). A video is one run of video tokens, split into its temporal patches for
    ``budget="per_image"``."""

    name = "ovis2_5"
    model_types = ("ovis2_5",)
    model_classes = ("Ovis2_5ForConditionalGeneration", "Ovis2_5Model")
    first_transformers = "5.25.0"

    def segments(self, model: nn.Module, input_ids: torch.Tensor, prunable: torch.Tensor, inputs: dict) -> torch.Tensor:
        labels = torch.where(prunable, input_ids, torch.full_like(input_ids, -1))
        video_id = int(model.config.video_token_id)
        grids = inputs.get("video_grid_thw")
        if grids is not None:
            return grid_frame_segments(labels, video_id, grids)
        if bool((input_ids == video_id).any()):
            raise FastVError(
                f"{type(model).__name__}: a video prompt reached FastV without video_grid_thw, so its frames cannot "
                "be told apart for budget='per_image'. Pass the processor's video_grid_thw."
            )
        return contiguous_runs(labels)


class Ovis2Family(Family):
    name = "ovis2"
    model_types = ("ovis2",)
    model_classes = ("Ovis2ForConditionalGeneration", "Ovis2Model")
    prunable_token_attrs = ("image_token_id",)

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return ovis2_layout(request)


# --- which image region each visual token covers (for fastv show-keep / analyze) ---------------------


def ovis2_layout(request: LayoutRequest) -> list[VisualLayout]:
    """Thumbnail first, then the tiles; the grid is the image processor's (``Ovis2ImageProcessor.crop_image_to_patches``)."""
    from transformers.models.ovis2 import image_processing_pil_ovis2 as ovis2

    processor = request.image_processor
    if processor is None:
        raise FastVError("The Ovis2 layout needs the image processor (for the tiling).")
    vision = request.config.vision_config
    patches = vision.image_size // vision.patch_size
    side = patches // vision.hidden_stride
    tile = int(option(option(processor, "size"), "height"))
    high = int(option(processor, "max_patches") or 1)
    tiled = []
    for h, w in request.image_sizes:
        if high <= 1:
            tiled.append((1, 1))
        elif option(processor, "use_covering_area_grid"):
            tiled.append(tuple(ovis2.get_min_tile_covering_grid((int(h), int(w)), tile, high)))
        else:
            low = int(option(processor, "min_patches") or 1)
            tiled.append(tuple(ovis2.get_optimal_tiled_canvas((int(h), int(w)), (tile, tile), low, high)))
    grids = pick_grids(request, tiled, default=bool(option(processor, "crop_to_patches")))
    return tiled_layouts(request, side, grids, thumbnail_first=True)


register_family(Ovis2Family())
register_family(Ovis2_5Family())
