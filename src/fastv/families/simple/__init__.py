"""Decoder VLMs that need nothing beyond the default adapter: image placeholders in ``input_ids``,
a stock transformers decoder (Llama / Qwen2 / Mistral ...) under ``language_model`` or ``text_model``.
"""

from __future__ import annotations

from typing import Any

from fastv.errors import FastVError
from fastv.families.base import Family
from fastv.families.layout import LayoutRequest, View, VisualLayout, grid_boxes, option
from fastv.families.registry import register_family


class InternVLFamily(Family):
    name = "internvl"
    model_types = ("internvl",)
    model_classes = ("InternVLForConditionalGeneration", "InternVLModel")

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return internvl_layout(request)


class Idefics3Family(Family):
    """Idefics3 and SmolVLM: the decoder is ``model.text_model``; each image split is one run of tokens."""

    name = "idefics3"
    model_types = ("idefics3",)
    model_classes = ("Idefics3ForConditionalGeneration", "Idefics3Model")

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return idefics3_layout(request)


class SmolVLMFamily(Idefics3Family):
    name = "smolvlm"
    model_types = ("smolvlm",)
    model_classes = ("SmolVLMForConditionalGeneration", "SmolVLMModel")


# --- which image region each visual token covers (for fastv show-keep / analyze) ---------------------


def idefics3_layout(request: LayoutRequest) -> list[VisualLayout]:
    """Idefics3 / SmolVLM: ``rows x cols`` tiles of the (stretched) image, row-major, then the global image.

    Each tile gives ``(image_size / patch_size / scale_factor)^2`` row-major tokens (pixel shuffle keeps
    row-major order). Rows and columns come from the image processor's ``get_number_of_image_patches``.
    """
    processor = request.image_processor
    if processor is None or not hasattr(processor, "get_number_of_image_patches"):
        raise FastVError("The Idefics3 / SmolVLM layout needs the image processor (for the image splitting).")
    vision = request.config.vision_config
    side = vision.image_size // vision.patch_size // int(request.config.scale_factor)
    out = []
    for n, size in enumerate(request.image_sizes):
        h, w = int(size[0]), int(size[1])
        _, rows, cols = processor.get_number_of_image_patches(h, w)
        views, offset = [], 0
        for r in range(rows):
            for c in range(cols):
                region = (c * w / cols, r * h / rows, (c + 1) * w / cols, (r + 1) * h / rows)
                tokens = tuple(range(offset, offset + side * side))
                views.append(
                    View(f"image {n + 1} tile {r + 1},{c + 1}", 0, tokens, tuple(grid_boxes(side, side, region)))
                )
                offset += side * side
        tokens = tuple(range(offset, offset + side * side))
        label = f"image {n + 1} (global)" if views else f"image {n + 1}"
        views.append(View(label, 0, tokens, tuple(grid_boxes(side, side, (0.0, 0.0, float(w), float(h))))))
        out.append(VisualLayout("image", (h, w), offset + side * side, tuple(views)))
    return out


def internvl_layout(request: LayoutRequest) -> list[VisualLayout]:
    """InternVL: ``cols x rows`` tiles of the (stretched) image, row-major, then a thumbnail when tiled.

    Each tile gives ``(image_size / patch_size * downsample_ratio)^2`` tokens, row-major (its pixel
    shuffle keeps row-major order). The tiling is the image processor's ``get_optimal_tiled_canvas``.
    """
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import get_optimal_tiled_canvas

    processor = request.image_processor
    if processor is None:
        raise FastVError("The InternVL layout needs the image processor (for the tiling).")
    vision = request.config.vision_config
    image_size, patch = _first(vision.image_size), _first(vision.patch_size)
    side = round(image_size / patch * float(request.config.downsample_ratio))
    tile = option(processor, "size")
    tile_hw = (int(option(tile, "height")), int(option(tile, "width")))
    out = []
    for n, size in enumerate(request.image_sizes):
        h, w = int(size[0]), int(size[1])
        cols = rows = 1
        if option(processor, "crop_to_patches") and int(processor.max_patches) > 1:
            cols, rows = get_optimal_tiled_canvas((h, w), tile_hw, processor.min_patches, processor.max_patches)
        whole = (0.0, 0.0, float(w), float(h))
        regions = (
            []
            if cols * rows == 1
            else [
                (f"tile {r + 1},{c + 1}", (c * w / cols, r * h / rows, (c + 1) * w / cols, (r + 1) * h / rows))
                for r in range(rows)
                for c in range(cols)
            ]
        )
        regions.append(("thumbnail" if regions else "", whole))
        views = []
        for i, (name, region) in enumerate(regions):
            tokens = tuple(range(i * side * side, (i + 1) * side * side))
            label = f"image {n + 1} {name}".strip()
            views.append(View(label, 0, tokens, tuple(grid_boxes(side, side, region))))
        out.append(VisualLayout("image", (h, w), len(regions) * side * side, tuple(views)))
    return out


def _first(value: Any) -> int:
    return int(value[0]) if isinstance(value, (list, tuple)) else int(value)


register_family(InternVLFamily())
register_family(Idefics3Family())
register_family(SmolVLMFamily())
