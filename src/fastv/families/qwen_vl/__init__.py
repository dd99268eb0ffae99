"""Qwen2-VL and Qwen2.5-VL: M-RoPE positions, image and video placeholders.

The decoder receives 3-D (temporal, height, width) positions, [3, B, n] or [4, B, n] with a text row
first; its rotary embedding folds them into ordinary (B, n, head_dim) cos/sin, so gathering cos/sin
rows keeps every kept token's original 3-D position. Decode positions come from the model's
``rope_deltas`` and layer 0's (unpruned) cache length, which FastV leaves intact.
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.core.segments import contiguous_runs, grid_frame_segments
from fastv.errors import FastVError
from fastv.families.base import Family
from fastv.families.layout import LayoutRequest, View, VisualLayout, grid_boxes
from fastv.families.registry import register_family


class QwenVLFamily(Family):
    name = "qwen2_vl"
    model_types = ("qwen2_vl",)
    model_classes = ("Qwen2VLForConditionalGeneration", "Qwen2VLModel")

    def segments(self, model: nn.Module, input_ids: torch.Tensor, prunable: torch.Tensor, inputs: dict) -> torch.Tensor:
        """Images are runs of image tokens; a video's run is split into its temporal patches (frames).

        ``generate`` encodes the pixels before the forward and passes no ``video_grid_thw``, but it passes the
        3-D M-RoPE positions: a frame is then the video tokens that share one temporal position.
        """
        labels = torch.where(prunable, input_ids, torch.full_like(input_ids, -1))
        video_id = int(model.config.video_token_id)
        grids, positions = inputs.get("video_grid_thw"), inputs.get("position_ids")
        if grids is not None:
            return grid_frame_segments(labels, video_id, grids)
        if positions is not None and positions.ndim == 3 and bool((input_ids == video_id).any()):
            return temporal_segments(input_ids, int(model.config.image_token_id), video_id, positions[-3])
        if bool((input_ids == video_id).any()):
            raise FastVError(
                f"{type(model).__name__}: a video prompt reached FastV without video_grid_thw or 3-D position_ids, "
                "so its frames cannot be told apart for budget='per_image'. Pass the processor's video_grid_thw."
            )
        return contiguous_runs(labels)

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return qwen2_vl_layout(request)


class Qwen25VLFamily(QwenVLFamily):
    name = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    model_classes = ("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLModel")


def temporal_segments(input_ids: torch.Tensor, image_id: int, video_id: int, temporal: torch.Tensor) -> torch.Tensor:
    """(B, n) segment ids: one per run of image tokens, one per temporal position of each sample's video
    tokens (its videos' temporal patches: later videos start after earlier ones' largest position), -1
    elsewhere."""
    out = contiguous_runs(torch.where(input_ids == image_id, input_ids, torch.full_like(input_ids, -1)))
    video = input_ids == video_id
    temporal = temporal.to(input_ids.device)
    for b in range(input_ids.shape[0]):
        if bool(video[b].any()):
            _, patch = torch.unique(temporal[b][video[b]], return_inverse=True)  # in time order
            out[b, video[b]] = int(out[b].max()) + 1 + patch  # after the row's images (max is -1 without)
    return out


# --- which image region each visual token covers (for fastv show-keep / analyze) ---------------------


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


register_family(QwenVLFamily())
register_family(Qwen25VLFamily())
