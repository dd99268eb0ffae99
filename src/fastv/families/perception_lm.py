"""PerceptionLM (Meta): LLaVA-style image and video placeholders in ``input_ids`` filled with pooled
Perception Encoder features, and a Llama decoder, so the default adapter ranks and prunes as is.

Each image tile and each video frame goes through the tower on its own, so a video is one run of
``frames x tokens-per-frame`` placeholders. For ``budget="per_image"`` the run is split into its
frames: the frame count is the second axis of ``pixel_values_videos`` (all videos of a batch share
it), or, under ``generate`` (which hands the forward precomputed features), each frame's token count
is the second axis of those features. No token -> image-region layout: the grid side depends on the
timm tower's architecture (image and patch size in its ``model_args``), which this adapter does not model.
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.core.segments import contiguous_runs, frame_segments
from fastv.families.base import Family


class PerceptionLMFamily(Family):
    name = "perception_lm"
    model_types = ("perception_lm",)
    model_classes = ("PerceptionLMForConditionalGeneration", "PerceptionLMModel")

    def segments(self, model: nn.Module, input_ids: torch.Tensor, prunable: torch.Tensor, inputs: dict) -> torch.Tensor:
        labels = torch.where(prunable, input_ids, torch.full_like(input_ids, -1))
        frames = _frames(inputs)
        if frames is None:
            return contiguous_runs(labels)
        return frame_segments(labels, int(model.config.video_token_id), lambda _, length: max(1, frames(length)))


def _frames(inputs: dict):
    """length -> frame count of a video run, from the video pixels or the precomputed video features."""
    pixels = inputs.get("pixel_values_videos")
    if pixels is not None:
        return lambda length: int(pixels.shape[1])
    encoded = (inputs.get("mm_encoder_outputs") or {}).get("video")
    features = getattr(encoded, "pooler_output", None)
    if features is not None:
        return lambda length: length // int(features.shape[1])
    return None
