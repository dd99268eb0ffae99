"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from fastv.selfcheck.case import mrope_case, on
from fastv.selfcheck.prompts import grid_prompt
from fastv.selfcheck.tiny import QWEN25_VISION, TinyQwenVL, grid_vlm, qwen_text_kwargs, seeded


@seeded
def tiny_qwen2_vl(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, **text) -> TinyQwenVL:
    return grid_vlm(
        "Qwen2VL",
        attn_implementation,
        seed,
        text_config={**qwen_text_kwargs(layers), **text},
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 4,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
    )


@seeded
def tiny_qwen2_5_vl(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, **text) -> TinyQwenVL:
    return grid_vlm(
        "Qwen2_5_VL",
        attn_implementation,
        seed,
        text_config={**qwen_text_kwargs(layers), **text},
        vision_config=dict(QWEN25_VISION),
    )


def qwen_prompt(
    vlm: TinyQwenVL, image_grid=(1, 4, 6), video_grid=(2, 4, 4), seed: int = 0, before: int = 3, after: int = 4
) -> dict:
    """An image and / or a video for Qwen2(.5)-VL, with the mm_token_type_ids its processor returns."""
    return grid_prompt(vlm, image_grid, video_grid, seed, before, after, run_per_frame=False)


CASES = {
    "qwen2_vl": on(tiny_qwen2_vl, qwen_prompt, mrope_case),
    "qwen2_5_vl": on(tiny_qwen2_5_vl, qwen_prompt, mrope_case),
}
