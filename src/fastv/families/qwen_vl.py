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
from fastv.families.base import Family


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


class Qwen25VLFamily(QwenVLFamily):
    name = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    model_classes = ("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLModel")
