"""Qwen2.5-Omni and Qwen3-Omni thinkers (``qwen2_5_omni_thinker``, ``qwen3_omni_moe_thinker``): the
text-generating half of the Omni models, which reads text, images, videos and audio.

Image and video tokens are the candidates; audio tokens are never dropped (they are not visual tokens;
FastV treats them like text). Positions are Qwen2.5-VL's 3-D M-RoPE (audio tokens get 1-D positions,
video frames are ``position_id_per_seconds`` apart in time), folded into ordinary cos/sin by the
decoder's rotary embedding, so kept tokens keep their original positions exactly as for Qwen2.5-VL;
decode positions come from the thinker's ``rope_deltas``. Qwen3-Omni's decoder has Qwen3-VL's q/k
norms, interleaved M-RoPE and DeepStack (visual features added to image / video positions after the
first decoder layers), adapted as for Qwen3-VL.

With ``use_audio_in_video=True`` a video's tokens are interleaved with its soundtrack's audio tokens,
so one video is several runs of video tokens; ``budget="per_image"`` therefore gives each temporal
patch of a video the tokens that share its temporal position, not a run of tokens.

Only the thinker is supported: the full ``Qwen2_5OmniForConditionalGeneration`` /
``Qwen3OmniMoeForConditionalGeneration`` feed the thinker's per-position hidden states to the talker
(speech), which a pruned prefill no longer has for every prompt position.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fastv.compat import decoder_under_model
from fastv.families.base import Family
from fastv.families.layout import LayoutRequest, VisualLayout
from fastv.families.qwen3_vl import patch_deepstack
from fastv.families.qwen_vl import qwen2_vl_layout, temporal_segments
from fastv.families.registry import register_family


class QwenOmniFamily(Family):
    name = "qwen2_5_omni_thinker"
    model_types = ("qwen2_5_omni_thinker",)
    model_classes = ("Qwen2_5OmniThinkerForConditionalGeneration",)

    def language_model(self, model: nn.Module) -> nn.Module:
        """The thinker's text decoder: ``thinker.model`` itself in releases without a ``*ThinkerModel``."""
        return decoder_under_model(model) or super().language_model(model)

    def prunable_mask(self, model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
        """Image and video tokens, never audio tokens."""
        mask = super().prunable_mask(model, input_ids)
        audio = getattr(model.config, "audio_token_id", None)
        return mask if audio is None else mask & (input_ids != int(audio))

    def segments(self, model: nn.Module, input_ids: torch.Tensor, prunable: torch.Tensor, inputs: dict) -> torch.Tensor:
        """Each image is its run of image tokens; each temporal patch (frame) of a video is the set of its
        tokens sharing one temporal M-RoPE position (a video interleaved with its audio is several runs)."""
        return temporal_segments(
            input_ids,
            int(model.config.image_token_id),
            int(model.config.video_token_id),
            temporal_positions(model, input_ids, inputs),
        )

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        """Qwen2-VL's merged-patch grid; a video interleaved with its audio keeps its tokens' frame order."""
        return qwen2_vl_layout(request)


class Qwen3OmniFamily(QwenOmniFamily):
    name = "qwen3_omni_moe_thinker"
    model_types = ("qwen3_omni_moe_thinker",)
    model_classes = ("Qwen3OmniMoeThinkerForConditionalGeneration",)

    def patch_language_model(self, language_model: nn.Module, current_plan: Callable[[], Any]) -> list[Any]:
        return patch_deepstack(language_model, current_plan)


def temporal_positions(model: nn.Module, input_ids: torch.Tensor, inputs: dict) -> torch.Tensor:
    """(B, n) temporal row of the M-RoPE positions this call runs with.

    ``generate`` passes them (as [text, t, h, w] rows) and, having encoded the pixels beforehand, no longer
    passes ``video_grid_thw``; a direct call passes grids and no positions, and the thinker's own
    ``get_rope_index`` gives the positions its forward will compute.
    """
    positions = inputs.get("position_ids")
    if positions is None or positions.ndim != 3:
        mask = inputs.get("attention_mask")
        features_mask = inputs.get("feature_attention_mask")
        positions, _ = model.get_rope_index(
            input_ids,
            inputs.get("image_grid_thw"),
            inputs.get("video_grid_thw"),
            torch.ones_like(input_ids) if mask is None else mask,
            bool(inputs.get("use_audio_in_video") or False),
            None if features_mask is None else features_mask.sum(-1),
            inputs.get("video_second_per_grid"),
        )
    return positions[-3]


register_family(QwenOmniFamily())
register_family(Qwen3OmniFamily())
