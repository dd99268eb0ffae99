"""GLM-4.1V / GLM-4.5V / GLM-4.6V (``glm4v``, ``glm4v_moe``, ``glm46v``): partial M-RoPE, and video frames
written with the *image* token id.

The rotary embedding folds 3-D (t, h, w) positions into ordinary cos/sin over the rotated part of
each head (``partial_rotary_factor``), and the module's ``apply_rotary_pos_emb`` rotates only that
part, so the base adapter's queries and keys are the model's own (checked at the first prefill).
Video frames reuse the image placeholder id, and each frame is its own run of tokens between
timestamp and frame markers, so ``budget="per_image"`` gives one segment per frame by default.
"""

from __future__ import annotations

from fastv.families.base import Family


class Glm4vFamily(Family):
    name = "glm4v"
    model_types = ("glm4v", "glm4v_moe", "glm46v")
    model_classes = (
        "Glm4vForConditionalGeneration",
        "Glm4vMoeForConditionalGeneration",
        "Glm46VForConditionalGeneration",
    )
