"""LLaVA-OneVision-1.5 (transformers 5.25 on): a Rice ViT over Qwen-VL packed patches and ``grid_thw``
(no temporal patch: every video frame is its own temporal slot, with its own class token, attending within
itself), merged 2x2 into ``image_token_id`` / ``video_token_id`` placeholders, and a Qwen3 decoder with
1-D positions (q/k norms before the rotary), so the default adapter ranks and prunes as is.

Its processor (Exaone 4.5's, Qwen2-VL's layout) puts every image and video between
``vision_start_token_id`` / ``vision_end_token_id``: ordinary text tokens, never candidates (only the
placeholders are). A video is one run of video tokens, split into its frames for ``budget="per_image"``.
"""

from __future__ import annotations

import torch
from torch import nn

from fastv.core.segments import contiguous_runs, grid_frame_segments
from fastv.errors import FastVError
from fastv.families.base import Family
from fastv.families.registry import register_family


class LlavaOnevision15Family(Family):
    name = "llava_onevision1_5"
    model_types = ("llava_onevision1_5",)
    model_classes = ("LlavaOnevision15ForConditionalGeneration", "LlavaOnevision15Model")
    first_transformers = "5.25.0"

    def segments(self, model: nn.Module, input_ids: torch.Tensor, prunable: torch.Tensor, inputs: dict) -> torch.Tensor:
        """Images are runs of image tokens; a video's run is split into its ``video_grid_thw`` frames.

        ``generate`` encodes the pixels before the forward and passes no ``video_grid_thw`` (and the
        positions are 1-D), so there a video's frames cannot be told apart: refused, not guessed.
        """
        labels = torch.where(prunable, input_ids, torch.full_like(input_ids, -1))
        video_id = int(model.config.video_token_id)
        grids = inputs.get("video_grid_thw")
        if grids is not None:
            return grid_frame_segments(labels, video_id, grids)
        if bool((input_ids == video_id).any()):
            raise FastVError(
                f"{type(model).__name__}: a video prompt reached FastV without video_grid_thw, so its frames cannot "
                "be told apart for budget='per_image'. Pass the processor's video_grid_thw (call the model "
                "directly), or use budget='global' with generate."
            )
        return contiguous_runs(labels)


register_family(LlavaOnevision15Family())
