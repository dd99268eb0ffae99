"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from functools import partial

import torch

from fastv.selfcheck.case import CaseBuilder, mrope_case, on
from fastv.selfcheck.prompts import qwen3_prompt
from fastv.selfcheck.tiny import IMAGE_TOKEN, PAD_TOKEN, VIDEO_TOKEN, VOCAB, TinyQwenVL, grid_vlm, seeded


@seeded
def tiny_glm4v(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, variant: str = "glm4v") -> TinyQwenVL:
    """GLM-4.1V (``glm4v``), GLM-4.5V (``glm4v_moe``: 4 routed experts after one dense layer) or GLM-4.6V
    (``glm46v``): partial M-RoPE (half of each head rotated), q/k/v biases."""
    text = {
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": [2, 1, 1],
            "partial_rotary_factor": 0.5,
        },
        "pad_token_id": PAD_TOKEN,
    }
    if variant == "glm4v_moe":
        text |= {
            "moe_intermediate_size": 32,
            "num_experts_per_tok": 2,
            "n_routed_experts": 4,
            "first_k_dense_replace": 1,
        }
    return grid_vlm(
        {"glm4v": "Glm4v", "glm4v_moe": "Glm4vMoe", "glm46v": "Glm46V"}[variant],
        attn_implementation,
        seed,
        text_config=text,
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 4,
            "image_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": 64,
        },
        image_start_token_id=122,
        image_end_token_id=123,
        video_start_token_id=124,
        video_end_token_id=125,
    )


def glm4v_prompt(vlm: TinyQwenVL, image_grid=(1, 4, 6), video_grid=None, seed: int = 0, before: int = 3) -> dict:
    """GLM-4V: Qwen3-VL's layout (one run per video frame), but video frames carry the image token id;
    only mm_token_type_ids (2) tells them apart, so one prompt holds images or a video, not both."""
    inputs = qwen3_prompt(vlm, image_grid, video_grid, seed, before)
    ids = inputs["input_ids"]
    inputs["input_ids"] = torch.where(ids == VIDEO_TOKEN, torch.full_like(ids, IMAGE_TOKEN), ids)
    return inputs


def _glm4v_case(variant: str) -> CaseBuilder:
    """GLM-4V takes images or a video per prompt, not both: the video (frames on the image id) is the case."""
    return on(partial(tiny_glm4v, variant=variant), glm4v_prompt, mrope_case, image_grid=None, video_grid=(4, 4, 4))


CASES = {variant: _glm4v_case(variant) for variant in ("glm4v", "glm4v_moe", "glm46v")}
