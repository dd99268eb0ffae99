"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from functools import partial

from fastv.selfcheck.case import mrope_case, on
from fastv.selfcheck.prompts import qwen3_prompt
from fastv.selfcheck.tiny import QWEN3_VISION, TinyQwenVL, grid_vlm, qwen_text_kwargs, seeded


@seeded
def tiny_qwen3_5(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, moe: bool = False) -> TinyQwenVL:
    """Qwen3.5 (or Qwen3.5-MoE: 4 experts, 2 per token, a gated shared expert): a hybrid decoder alternating
    Gated DeltaNet linear-attention and gated full-attention layers (so k=2 ranks with full layer 1 and prunes
    a linear and a full layer), partial interleaved M-RoPE, Qwen3-VL vision without DeepStack."""
    text = qwen_text_kwargs(layers)
    text["head_dim"] = 16
    text["layer_types"] = ["linear_attention", "full_attention"] * (layers // 2) + ["linear_attention"] * (layers % 2)
    text["rope_parameters"] = {
        **text["rope_parameters"],
        "mrope_section": [2, 1, 1],
        "mrope_interleaved": True,
        "partial_rotary_factor": 0.5,
    }
    text |= {
        "linear_conv_kernel_dim": 4,
        "linear_key_head_dim": 8,
        "linear_value_head_dim": 8,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
    }
    if moe:
        text |= {
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": 32,
            "shared_expert_intermediate_size": 32,
        }
    vision = {key: value for key, value in QWEN3_VISION.items() if key != "deepstack_visual_indexes"}
    return grid_vlm(
        "Qwen3_5Moe" if moe else "Qwen3_5", attn_implementation, seed, text_config=text, vision_config=vision
    )


# A hybrid decoder: Gated DeltaNet linear-attention layers 0 and 2 (pruned from 2), full attention 1 and 3.
CASES = {
    "qwen3_5": on(tiny_qwen3_5, qwen3_prompt, mrope_case, video_grid=(4, 4, 4)),
    "qwen3_5_moe": on(partial(tiny_qwen3_5, moe=True), qwen3_prompt, mrope_case, video_grid=(4, 4, 4)),
}
