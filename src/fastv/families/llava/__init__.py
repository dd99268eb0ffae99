"""The LLaVA line: image / video tokens are placeholders in ``input_ids`` (``image_token_id`` /
``video_token_id``) that the outer model fills with projected vision features.

LLaVA-NeXT's and LLaVA-OneVision's anyres tiling give each image a different token count; nothing
here depends on it, since candidates are found per position. A video is one run of placeholders
holding every frame's tokens in order; for ``budget="per_image"`` it is split into its frames.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fastv.core.segments import contiguous_runs, frame_segments
from fastv.errors import FastVError
from fastv.families.base import Family
from fastv.families.layout import (
    LayoutRequest,
    Size,
    View,
    VisualLayout,
    grid_boxes,
    select_strategy_extra,
    square_view,
)
from fastv.families.registry import register_family


class LlavaFamily(Family):
    name = "llava"
    model_types = ("llava",)
    model_classes = ("LlavaForConditionalGeneration", "LlavaModel")

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return llava_layout(request)


class VipLlavaFamily(LlavaFamily):
    """VipLLaVA: LLaVA whose projector concatenates several vision layers' features; the decoder sequence
    (one CLS-stripped square grid per image) and the decoder are LLaVA's."""

    name = "vipllava"
    model_types = ("vipllava",)
    model_classes = ("VipLlavaForConditionalGeneration", "VipLlavaModel")


class LlavaNextFamily(Family):
    name = "llava_next"
    model_types = ("llava_next",)
    model_classes = ("LlavaNextForConditionalGeneration", "LlavaNextModel")

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return llava_next_layout(request)


class LlavaVideoFamily(Family):
    """LLaVA families with videos: each video is one run of ``tokens_per_frame(config)``-token frames.

    The frame size comes from the config, not the inputs: ``generate`` hands the outer forward
    precomputed encoder outputs instead of ``pixel_values_videos``.
    """

    def tokens_per_frame(self, config) -> int:
        raise NotImplementedError

    def segments(self, model: nn.Module, input_ids: torch.Tensor, prunable: torch.Tensor, inputs: dict) -> torch.Tensor:
        labels = torch.where(prunable, input_ids, torch.full_like(input_ids, -1))
        video_id = getattr(model.config, "video_token_id", None)
        if video_id is None:
            return contiguous_runs(labels)
        per_frame = self.tokens_per_frame(model.config)
        return frame_segments(labels, int(video_id), lambda _, length: max(1, length // per_frame))


def _patch_side(config) -> int:
    return config.vision_config.image_size // config.vision_config.patch_size


class VideoLlavaFamily(LlavaVideoFamily):
    name = "video_llava"
    model_types = ("video_llava",)
    model_classes = ("VideoLlavaForConditionalGeneration", "VideoLlavaModel")

    def tokens_per_frame(self, config) -> int:
        return _patch_side(config) ** 2 + 1  # the video tower keeps its CLS token per frame

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return video_llava_layout(request)


class LlavaNextVideoFamily(LlavaVideoFamily):
    name = "llava_next_video"
    model_types = ("llava_next_video",)
    model_classes = ("LlavaNextVideoForConditionalGeneration", "LlavaNextVideoModel")

    def tokens_per_frame(self, config) -> int:
        return (_patch_side(config) // config.spatial_pool_stride) ** 2

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return llava_next_video_layout(request)


class LlavaOnevisionFamily(LlavaVideoFamily):
    """Frames are pooled to half size; one newline token closes each video (it joins the last frame)."""

    name = "llava_onevision"
    model_types = ("llava_onevision",)
    model_classes = ("LlavaOnevisionForConditionalGeneration", "LlavaOnevisionModel")

    def tokens_per_frame(self, config) -> int:
        return math.ceil(_patch_side(config) / 2) ** 2

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return llava_onevision_layout(request)


# --- which image region each visual token covers (for fastv show-keep / analyze) ---------------------


def llava_layout(request: LayoutRequest) -> list[VisualLayout]:
    """A (image_size / patch_size)^2 row-major grid over the processor's square view of each image."""
    vision = request.config.vision_config
    side = vision.image_size // vision.patch_size
    extra = select_strategy_extra(request.config)
    out = []
    for n, size in enumerate(request.image_sizes):
        boxes = grid_boxes(side, side, square_view(size, request.image_processor))
        tokens = tuple(range(extra, extra + side * side))
        view = View(f"image {n + 1}", 0, tokens, tuple(boxes))
        out.append(VisualLayout("image", tuple(size), side * side + extra, (view,), tuple(range(extra))))
    return out


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
    if select_strategy_extra(request.config):
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


register_family(LlavaFamily())
register_family(LlavaNextFamily())
register_family(LlavaNextVideoFamily())
register_family(LlavaOnevisionFamily())
register_family(VideoLlavaFamily())
register_family(VipLlavaFamily())
