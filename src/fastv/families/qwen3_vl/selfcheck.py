"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from functools import partial

from fastv.selfcheck.case import mrope_case, on
from fastv.selfcheck.prompts import qwen3_prompt
from fastv.selfcheck.tiny import QWEN3_VISION, TinyQwenVL, grid_vlm, qwen_text_kwargs, seeded


@seeded
def tiny_qwen3_vl(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, moe: bool = False) -> TinyQwenVL:
    """Qwen3-VL (or Qwen3-VL-MoE: 4 experts, 2 per token): interleaved M-RoPE, q/k norms, DeepStack features
    added after decoder layers 0-2."""
    text = qwen_text_kwargs(layers)
    text["head_dim"] = 16
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_section": [4, 2, 2], "mrope_interleaved": True}
    if moe:
        text |= {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "decoder_sparse_step": 1}
    return grid_vlm(
        "Qwen3VLMoe" if moe else "Qwen3VL",
        attn_implementation,
        seed,
        text_config=text,
        vision_config=dict(QWEN3_VISION),
    )


CASES = {
    "qwen3_vl": on(tiny_qwen3_vl, qwen3_prompt, mrope_case, video_grid=(4, 4, 4)),
    "qwen3_vl_moe": on(partial(tiny_qwen3_vl, moe=True), qwen3_prompt, mrope_case, video_grid=(4, 4, 4)),
}
