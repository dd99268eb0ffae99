"""Which image region each visual token covers, per model family (for pictures of what FastV keeps).

The decoder sees image tokens as a flat run of placeholders; where each one came from depends on the
family's preprocessing (LLaVA's fixed grid, LLaVA-NeXT's base tile + unpadded high-res tiles with a
newline token per row, Qwen2-VL's 2x2-merged patches). A layout function turns a prompt's processor
outputs into :class:`VisualLayout` s: for every visual input, which token offset covers which box of
the *original* image. Adding a family is one function plus ``register_layout``. Core code never
imports this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from fastv.errors import FastVError, UnsupportedModelError

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in original-image pixels
Size = tuple[int, int]  # (height, width)


@dataclass(frozen=True)
class View:
    """One picture panel: a frame of a visual input and the boxes some of its tokens cover.

    ``tokens`` are offsets into the input's own run of placeholder tokens; ``boxes[i]`` is the region
    of ``tokens[i]``. LLaVA-NeXT gives two views per image (the low-res base tile and the high-res
    grid), since their tokens cover the same pixels at different scales.
    """

    label: str
    frame: int
    tokens: tuple[int, ...]
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class VisualLayout:
    """One image or video of a prompt: its size, token count and views.

    Tokens in no view (LLaVA-NeXT's ``image_newline``) are listed in ``unplaced``.
    """

    kind: str  # "image" | "video"
    size: Size
    n_tokens: int
    views: tuple[View, ...]
    unplaced: tuple[int, ...] = ()
    n_frames: int = 1
    unplaced_name: str = "CLS"  # what the unplaced tokens are, for captions


@dataclass(frozen=True)
class LayoutRequest:
    """What a layout function may read: model config, image processor, processor outputs, original sizes."""

    config: Any
    image_sizes: Sequence[Size]
    image_processor: Any = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    video_sizes: Sequence[Size] = ()
    video_frames: Sequence[int] = ()
    video_processor: Any = None


LayoutFn = Callable[[LayoutRequest], list[VisualLayout]]
_LAYOUTS: dict[str, LayoutFn] = {}


def register_layout(model_type: str, fn: LayoutFn) -> LayoutFn:
    """Make ``fn`` the token -> region mapping for ``model_type`` (later registrations win)."""
    _LAYOUTS[model_type] = fn
    return fn


def layouts(request: LayoutRequest) -> list[VisualLayout]:
    """Every visual input's layout, in prompt order within each kind (images, then videos)."""
    model_type = getattr(request.config, "model_type", None)
    fn = _LAYOUTS.get(model_type)
    if fn is None:
        raise UnsupportedModelError(
            f"No token -> image-region layout for model_type={model_type!r} (known: {', '.join(sorted(_LAYOUTS))}). "
            "Register one with fastv.families.layout.register_layout(model_type, fn)."
        )
    return fn(request)


def assign_positions(layouts_: Sequence[VisualLayout], input_ids: torch.Tensor, config: Any) -> list[torch.Tensor]:
    """Prompt positions of each layout's tokens: the k-th image's tokens follow the (k-1)-th's in ``input_ids``.

    ``input_ids`` is one unpadded prompt (1-D). Raises when the counts disagree (a processor the layout
    does not model, or a prompt whose placeholders were not expanded by the processor).
    """
    ids = input_ids.reshape(-1)
    out: list[torch.Tensor] = []
    for kind in ("image", "video"):
        token_id = getattr(config, f"{kind}_token_id", None)
        if token_id is None:
            token_id = getattr(config, f"{kind}_token_index", None)
        mine = [i for i, lay in enumerate(layouts_) if lay.kind == kind]
        if not mine:
            continue
        positions = (ids == int(token_id)).nonzero().squeeze(1)
        expected = sum(layouts_[i].n_tokens for i in mine)
        if positions.numel() != expected:
            raise FastVError(
                f"The prompt has {positions.numel()} {kind} tokens but the layout expects {expected} for "
                f"{len(mine)} {kind}(s); the processor's geometry differs from what the layout models."
            )
        start = 0
        for i in mine:
            out.append((i, positions[start : start + layouts_[i].n_tokens]))
            start += layouts_[i].n_tokens
    return [positions for _, positions in sorted(out, key=lambda item: item[0])]


# --- geometry helpers ------------------------------------------------------------------------------


def grid_boxes(rows: int, cols: int, region: Box) -> list[Box]:
    """Row-major boxes of a ``rows x cols`` grid tiling ``region``."""
    x0, y0, x1, y1 = region
    w, h = (x1 - x0) / cols, (y1 - y0) / rows
    return [(x0 + c * w, y0 + r * h, x0 + (c + 1) * w, y0 + r * h + h) for r in range(rows) for c in range(cols)]


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def square_view(size: Size, image_processor: Any) -> Box:
    """The original-image region that fills the model's square input, after the processor's resize/crop/pad.

    Handles the CLIP-style processors: pad to square (``do_pad``, LLaVA-1.5's original recipe), resize
    of the shortest edge then centre crop, or a plain resize to height x width (a stretch: the whole
    image). Coordinates may fall outside the image (padding).
    """
    h, w = size
    if image_processor is None:
        return (0.0, 0.0, float(w), float(h))
    if _get(image_processor, "do_pad") and not _get(image_processor, "image_grid_pinpoints"):
        side = max(h, w)
        h = w = side
        off_x, off_y = (side - size[1]) / 2, (side - size[0]) / 2
    else:
        off_x = off_y = 0.0
    resize = _get(image_processor, "size") or {}
    crop = _get(image_processor, "crop_size") or {}
    edge = _get(resize, "shortest_edge")
    if _get(image_processor, "do_resize") is False:
        scale_x = scale_y = 1.0
        rh, rw = h, w
    elif edge:
        scale_x = scale_y = edge / min(h, w)
        rh, rw = h * scale_y, w * scale_x
    elif _get(resize, "height") and _get(resize, "width"):
        rh, rw = (
            float(resize["height"] if isinstance(resize, Mapping) else resize.height),
            float(resize["width"] if isinstance(resize, Mapping) else resize.width),
        )
        scale_y, scale_x = rh / h, rw / w
    else:
        return (-off_x, -off_y, w - off_x, h - off_y)
    if _get(image_processor, "do_center_crop") and _get(crop, "height"):
        ch, cw = float(_get(crop, "height")), float(_get(crop, "width"))
    else:
        ch, cw = rh, rw
    top, left = (rh - ch) / 2, (rw - cw) / 2
    return (left / scale_x - off_x, top / scale_y - off_y, (left + cw) / scale_x - off_x, (top + ch) / scale_y - off_y)


def _select_strategy_extra(config: Any) -> int:
    """Vision tokens per tile beyond the patch grid (the CLS token, kept by the "full" strategy)."""
    return 1 if getattr(config, "vision_feature_select_strategy", "default") == "full" else 0


# --- LLaVA-1.5: one fixed grid per image -----------------------------------------------------------


def llava_layout(request: LayoutRequest) -> list[VisualLayout]:
    """A (image_size / patch_size)^2 row-major grid over the processor's square view of each image."""
    vision = request.config.vision_config
    side = vision.image_size // vision.patch_size
    extra = _select_strategy_extra(request.config)
    out = []
    for n, size in enumerate(request.image_sizes):
        boxes = grid_boxes(side, side, square_view(size, request.image_processor))
        tokens = tuple(range(extra, extra + side * side))
        view = View(f"image {n + 1}", 0, tokens, tuple(boxes))
        out.append(VisualLayout("image", tuple(size), side * side + extra, (view,), tuple(range(extra))))
    return out


# --- LLaVA-NeXT: base tile + anyres grid, unpadded, newline per row ----------------------------------


def _canvas_to_image(size: Size, canvas: Size) -> tuple[float, float, float]:
    """(scale, pad_x, pad_y): how the processor fitted the image into the best-resolution canvas."""
    from transformers.image_processing_utils import get_patch_output_size

    h, w = size
    new_h, new_w = get_patch_output_size(torch.empty(1, h, w), canvas, input_data_format="channels_first")
    pad_y, pad_x = (canvas[0] - new_h) // 2, (canvas[1] - new_w) // 2
    return new_w / w, pad_x, pad_y


def llava_next_layout(request: LayoutRequest) -> list[VisualLayout]:
    """Base tile (the image squashed to a square) then the unpadded high-res grid, one newline per row.

    Mirrors ``LlavaNextModel.pack_image_features``: the grid is unpadded with transformers' own
    ``unpad_image`` applied to a tensor of canvas coordinates, so the token order is the model's.
    """
    if _select_strategy_extra(request.config):
        raise FastVError("The LLaVA-NeXT layout models vision_feature_select_strategy='default' (no CLS token) only.")
    return anyres_layouts(request)


def anyres_layouts(request: LayoutRequest, max_tiles: int | None = None) -> list[VisualLayout]:
    """LLaVA-NeXT-style images; ``max_tiles`` (LLaVA-OneVision's ``anyres_max_N``) shrinks large grids.

    OneVision bilinearly resizes an unpadded grid larger than ~N tiles to ``int(rows // r) x int(cols // r)``
    tokens; each such token covers ``r`` canvas patches per side.
    """
    from transformers.image_processing_utils import select_best_resolution
    from transformers.models.llava_next.modeling_llava_next import unpad_image

    vision = request.config.vision_config
    tile, patch = vision.image_size, vision.patch_size
    side = tile // patch
    out = []
    for n, size in enumerate(request.image_sizes):
        h, w = int(size[0]), int(size[1])
        base = View(f"image {n + 1} (base)", 0, tuple(range(side * side)), tuple(grid_boxes(side, side, (0, 0, w, h))))
        canvas = select_best_resolution((h, w), request.config.image_grid_pinpoints)
        rows, cols = canvas[0] // tile * side, canvas[1] // tile * side
        coords = torch.stack(torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij"))
        kept = unpad_image(coords, [h, w])  # (2, r, c) canvas rows / cols that survive unpadding
        top, left = int(kept[0, 0, 0]), int(kept[1, 0, 0])
        kept_rows, kept_cols = kept.shape[1:]
        out_rows, out_cols = kept_rows, kept_cols
        if max_tiles is not None:
            ratio = math.sqrt(kept_rows * kept_cols / (max_tiles * side**2))
            if ratio > 1.1:
                out_rows, out_cols = int(kept_rows // ratio), int(kept_cols // ratio)
        step_y, step_x = kept_rows / out_rows * patch, kept_cols / out_cols * patch  # canvas pixels per token
        scale, pad_x, pad_y = _canvas_to_image((h, w), canvas)
        tokens, boxes, newlines = [], [], []
        offset = side * side
        for r in range(out_rows):
            for c in range(out_cols):
                x0, y0 = left * patch + c * step_x, top * patch + r * step_y
                boxes.append(
                    (
                        (x0 - pad_x) / scale,
                        (y0 - pad_y) / scale,
                        (x0 + step_x - pad_x) / scale,
                        (y0 + step_y - pad_y) / scale,
                    )
                )
                tokens.append(offset)
                offset += 1
            newlines.append(offset)  # image_newline closes every row
            offset += 1
        views = (base, View(f"image {n + 1} (high-res)", 0, tuple(tokens), tuple(boxes)))
        out.append(VisualLayout("image", (h, w), offset, views, tuple(newlines), unplaced_name="newline"))
    return out


# --- LLaVA video families: one grid per frame -------------------------------------------------------


def frame_grid_layouts(request: LayoutRequest, side: int, leading: int = 0) -> list[VisualLayout]:
    """Each video frame as ``leading`` unplaced tokens (a CLS) then a ``side x side`` row-major grid."""
    out = []
    per_frame = leading + side * side
    for n, (size, frames) in enumerate(zip(request.video_sizes, request.video_frames, strict=True)):
        boxes = tuple(grid_boxes(side, side, square_view(size, request.video_processor)))
        views, unplaced = [], []
        for f in range(frames):
            start = f * per_frame
            unplaced += range(start, start + leading)
            tokens = tuple(range(start + leading, start + per_frame))
            views.append(View(f"video {n + 1} frame {f}", f, tokens, boxes))
        out.append(VisualLayout("video", tuple(size), frames * per_frame, tuple(views), tuple(unplaced), frames))
    return out


def video_llava_layout(request: LayoutRequest) -> list[VisualLayout]:
    """Images as LLaVA; video frames keep their CLS token (Video-LLaVA skips the select strategy for videos)."""
    vision = request.config.vision_config
    return llava_layout(request) + frame_grid_layouts(request, vision.image_size // vision.patch_size, leading=1)


def llava_next_video_layout(request: LayoutRequest) -> list[VisualLayout]:
    """Images as LLaVA-NeXT; each video frame's grid is pooled by ``spatial_pool_stride`` (no newline)."""
    config = request.config
    side = config.vision_config.image_size // config.vision_config.patch_size // config.spatial_pool_stride
    return llava_next_layout(request) + frame_grid_layouts(request, side)


def llava_onevision_layout(request: LayoutRequest) -> list[VisualLayout]:
    """Images as LLaVA-NeXT with ``anyres_max_N`` shrinking; video frames pooled to ceil(side / 2)^2, one newline after."""
    config = request.config
    aspect = getattr(config, "vision_aspect_ratio", "anyres_max_9")
    max_tiles = int(aspect.removeprefix("anyres_max_")) if aspect.startswith("anyres_max_") else None
    side = math.ceil(config.vision_config.image_size // config.vision_config.patch_size / 2)
    videos = frame_grid_layouts(request, side)
    videos = [
        VisualLayout("video", v.size, v.n_tokens + 1, v.views, (v.n_tokens,), v.n_frames, "newline") for v in videos
    ]
    return anyres_layouts(request, max_tiles) + videos


def gemma3_layout(request: LayoutRequest) -> list[VisualLayout]:
    """``mm_tokens_per_image`` pooled patches, a square row-major grid over the resized (stretched) image."""
    side = math.isqrt(int(request.config.mm_tokens_per_image))
    out = []
    for n, size in enumerate(request.image_sizes):
        boxes = tuple(grid_boxes(side, side, square_view(size, request.image_processor)))
        view = View(f"image {n + 1}", 0, tuple(range(side * side)), boxes)
        out.append(VisualLayout("image", tuple(size), side * side, (view,)))
    return out


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
    tile = _get(processor, "size")
    tile_hw = (int(_get(tile, "height")), int(_get(tile, "width")))
    out = []
    for n, size in enumerate(request.image_sizes):
        h, w = int(size[0]), int(size[1])
        cols = rows = 1
        if _get(processor, "crop_to_patches") and int(processor.max_patches) > 1:
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


# --- Qwen2-VL: 2x2-merged patches over a smart-resized image, 2 frames per temporal patch ---------


def qwen2_vl_layout(request: LayoutRequest) -> list[VisualLayout]:
    """Row-major merged patches of ``image_grid_thw`` / ``video_grid_thw`` over the (stretched) image.

    Qwen2-VL resizes each image to multiples of ``patch_size * merge_size`` without cropping or padding,
    so merged token (r, c) of an (h/m, w/m) grid covers that fraction of the original image.
    """
    vision = request.config.vision_config
    merge = int(getattr(vision, "spatial_merge_size", 2))
    temporal = int(getattr(vision, "temporal_patch_size", 2))
    out = []
    for kind, sizes, key in (
        ("image", request.image_sizes, "image_grid_thw"),
        ("video", request.video_sizes, "video_grid_thw"),
    ):
        grids = request.inputs.get(key)
        if not sizes:
            continue
        if grids is None or len(grids) != len(sizes):
            raise FastVError(
                f"Qwen2-VL layout needs `{key}` from the processor for each of the {len(sizes)} {kind}(s)."
            )
        for n, (size, thw) in enumerate(zip(sizes, grids, strict=True)):
            t, gh, gw = (int(v) for v in thw)
            rows, cols = gh // merge, gw // merge
            h, w = int(size[0]), int(size[1])
            boxes = tuple(grid_boxes(rows, cols, (0.0, 0.0, float(w), float(h))))
            views = []
            for f in range(t):
                first = f * temporal if kind == "video" else 0
                label = f"{kind} {n + 1}" if kind == "image" else f"video {n + 1} frames {first}-{first + temporal - 1}"
                tokens = tuple(range(f * rows * cols, (f + 1) * rows * cols))
                views.append(View(label, first, tokens, boxes))
            n_frames = t * temporal if kind == "video" else 1
            out.append(VisualLayout(kind, (h, w), t * rows * cols, tuple(views), (), n_frames))
    return out


register_layout("llava", llava_layout)
register_layout("llava_next", llava_next_layout)
register_layout("video_llava", video_llava_layout)
register_layout("llava_next_video", llava_next_video_layout)
register_layout("llava_onevision", llava_onevision_layout)
register_layout("gemma3", gemma3_layout)
register_layout("mistral3", mistral3_layout)
register_layout("idefics3", idefics3_layout)
register_layout("smolvlm", idefics3_layout)
register_layout("internvl", internvl_layout)
register_layout("qwen2_vl", qwen2_vl_layout)
register_layout("qwen2_5_vl", qwen2_vl_layout)
