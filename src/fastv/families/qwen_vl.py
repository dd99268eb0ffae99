"""Qwen2-VL and Qwen2.5-VL: M-RoPE positions, image and video placeholders.

The decoder receives 3-D (temporal, height, width) positions, [3, B, n] or [4, B, n] with a text row
first; its rotary embedding folds them into ordinary (B, n, head_dim) cos/sin, so gathering cos/sin
rows keeps every kept token's original 3-D position. Decode positions come from the model's
``rope_deltas`` and layer 0's (unpruned) cache length, which FastV leaves intact.
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.core.segments import contiguous_runs, split_runs
from fastv.families.base import Family


class QwenVLFamily(Family):
    name = "qwen2_vl"
    model_types = ("qwen2_vl",)
    model_classes = ("Qwen2VLForConditionalGeneration", "Qwen2VLModel")

    def segments(self, model: nn.Module, input_ids: torch.Tensor, prunable: torch.Tensor, inputs: dict) -> torch.Tensor:
        """Images are runs of image tokens; a video's run is split into its temporal patches (frames)."""
        labels = torch.where(prunable, input_ids, torch.full_like(input_ids, -1))
        runs = contiguous_runs(labels)
        video_grids = inputs.get("video_grid_thw")
        if video_grids is None:
            return runs
        video_id = model.config.video_token_id
        frames = iter(int(t) for t in video_grids[:, 0])
        parts = torch.ones(runs.shape[0], int(runs.max()) + 1 if runs.numel() else 0, dtype=torch.long)
        for b, row in enumerate(runs):
            for s in range(parts.shape[1]):
                where = (row == s).nonzero()
                if where.numel() and int(input_ids[b, where[0, 0]]) == video_id:
                    parts[b, s] = next(frames, 1)
        return split_runs(runs, parts)


class Qwen25VLFamily(QwenVLFamily):
    name = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    model_classes = ("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLModel")
