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
from fastv.families.base import Family


class LlavaFamily(Family):
    name = "llava"
    model_types = ("llava",)
    model_classes = ("LlavaForConditionalGeneration", "LlavaModel")


class LlavaNextFamily(Family):
    name = "llava_next"
    model_types = ("llava_next",)
    model_classes = ("LlavaNextForConditionalGeneration", "LlavaNextModel")


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


class LlavaNextVideoFamily(LlavaVideoFamily):
    name = "llava_next_video"
    model_types = ("llava_next_video",)
    model_classes = ("LlavaNextVideoForConditionalGeneration", "LlavaNextVideoModel")

    def tokens_per_frame(self, config) -> int:
        return (_patch_side(config) // config.spatial_pool_stride) ** 2


class LlavaOnevisionFamily(LlavaVideoFamily):
    """Frames are pooled to half size; one newline token closes each video (it joins the last frame)."""

    name = "llava_onevision"
    model_types = ("llava_onevision",)
    model_classes = ("LlavaOnevisionForConditionalGeneration", "LlavaOnevisionModel")

    def tokens_per_frame(self, config) -> int:
        return math.ceil(_patch_side(config) / 2) ** 2
