"""GLM-4.1V / GLM-4.5V / GLM-4.6V (``glm4v``, ``glm4v_moe``, ``glm46v``): partial M-RoPE, and video frames
written with the *image* token id.

The rotary embedding folds 3-D (t, h, w) positions into ordinary cos/sin over the rotated part of
each head (``partial_rotary_factor``), and the module's ``apply_rotary_pos_emb`` rotates only that
part, so the base adapter's queries and keys are the model's own (checked at the first prefill).
Video frames reuse the image placeholder id, and each frame is its own run of tokens between
timestamp and frame markers, so ``budget="per_image"`` gives one segment per frame by default.
"""

from __future__ import annotations

from fastv.errors import UnsupportedModelError
from fastv.families.base import Family
from fastv.families.layout import LayoutRequest, VisualLayout
from fastv.families.qwen_vl import qwen2_vl_layout
from fastv.families.registry import register_family


class Glm4vFamily(Family):
    name = "glm4v"
    model_types = ("glm4v", "glm4v_moe", "glm46v")
    model_classes = (
        "Glm4vForConditionalGeneration",
        "Glm4vMoeForConditionalGeneration",
        "Glm46VForConditionalGeneration",
    )

    def visual_layouts(self, request: LayoutRequest) -> list[VisualLayout]:
        """Qwen2-VL's merged-patch grid (14 px patches), for images. Video frames are written with the image
        token id, so their tokens cannot be told from an image's by id: video prompts get no layout."""
        if request.video_sizes:
            raise UnsupportedModelError(
                "GLM-4V writes video frames with the image token id, so FastV cannot map a video's tokens to "
                "frame regions; show-keep and analyze pictures cover image-only GLM-4V prompts."
            )
        return qwen2_vl_layout(request)


register_family(Glm4vFamily())
