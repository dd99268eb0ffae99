"""Qwen2-VL and Qwen2.5-VL: M-RoPE positions, image and video placeholders.

The decoder receives 3-D (temporal, height, width) positions, [3, B, n] or [4, B, n] with a text row
first; its rotary embedding folds them into ordinary (B, n, head_dim) cos/sin, so gathering cos/sin
rows keeps every kept token's original 3-D position. Decode positions come from the model's
``rope_deltas`` and layer 0's (unpruned) cache length, which FastV leaves intact.
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.core.segments import contiguous_runs, frame_segments
from fastv.errors import FastVError
from fastv.families.base import Family
from fastv.families.layout import LayoutRequest, View, VisualLayout, grid_boxes


class QwenVLFamily(Family):
    name = "qwen2_vl"
    model_types = ("qwen2_vl",)
    model_classes = ("Qwen2VLForConditionalGeneration", "Qwen2VLModel")

    def segments(self, model: nn.Module, input_ids: torch.Tensor, prunable: torch.Tensor, inputs: dict) -> torch.Tensor:
        """Images are runs of image tokens; a video's run is split into its temporal patches (frames)."""
        labels = torch.where(prunable, input_ids, torch.full_like(input_ids, -1))
        grids = inputs.get("video_grid_thw")
        if grids is None:
            return contiguous_runs(labels)
        temporal = [int(t) for t in grids[:, 0]]
        return frame_segments(
            labels, int(model.config.video_token_id), lambda i, _: temporal[i] if i < len(temporal) else 1
        )

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        return qwen2_vl_layout(request)


class Qwen25VLFamily(QwenVLFamily):
    name = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    model_classes = ("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLModel")


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
