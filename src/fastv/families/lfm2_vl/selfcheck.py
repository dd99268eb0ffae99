"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

import torch

from fastv.selfcheck.case import on
from fastv.selfcheck.tiny import IMAGE_TOKEN, PAD_TOKEN, VOCAB, TinyNaFlexVLM, finish, left_pad, mm_prompt, seeded

LFM2_LAYER_TYPES = ("conv", "full_attention", "conv", "full_attention")


@seeded
def tiny_lfm2_vl(
    attn_implementation: str = "sdpa",
    seed: int = 0,
    moe: bool = False,
    layer_types: tuple[str, ...] = LFM2_LAYER_TYPES,
) -> TinyNaFlexVLM:
    """LFM2-VL: SigLIP2 NaFlex patches, 2x2 pixel-unshuffled into one image token each, and an LFM2 decoder
    (or LFM2-MoE: 4 experts, 2 per token, after one dense layer) mixing gated short-convolution layers
    (kernel 3) and full-attention layers per ``layer_types`` (by default conv / full alternating, so k=2
    ranks with full layer 1 and prunes a conv and a full layer)."""
    from transformers import Lfm2VlConfig, Lfm2VlForConditionalGeneration

    text = {
        "model_type": "lfm2_moe" if moe else "lfm2",
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": len(layer_types),
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "layer_types": list(layer_types),
        "conv_L_cache": 3,
        "pad_token_id": PAD_TOKEN,
        "tie_word_embeddings": False,
    }
    if moe:
        text |= {"num_dense_layers": 1, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32}
    else:
        text["block_auto_adjust_ff_dim"] = False
    config = Lfm2VlConfig(
        vision_config={
            "model_type": "siglip2_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_patches": 64,
            "patch_size": 4,
        },
        text_config=text,
        image_token_id=IMAGE_TOKEN,
        projector_hidden_size=32,
        downsample_factor=2,
        tie_word_embeddings=False,
    )
    model = Lfm2VlForConditionalGeneration(config)
    return TinyNaFlexVLM(finish(model, attn_implementation, seed), patch=4, tokens_per_patch_block=4)


def lfm2_vl_prompt(
    vlm: TinyNaFlexVLM, sizes: tuple[tuple[int, int], ...] = ((4, 6), (8, 4)), seed: int = 0, before: int = 3
) -> dict:
    """LFM2-VL: text, then images of ``sizes`` (h, w patches) at their own aspect, one run of tokens each."""
    ids, _ = mm_prompt(before, [(IMAGE_TOKEN, vlm.tokens(size)) for size in sizes], 5, seed=seed)
    return {"input_ids": ids[None], "attention_mask": torch.ones_like(ids[None]), **vlm.lfm2_images(list(sizes), seed)}


def lfm2_vl_batch(singles: list[dict]) -> dict:
    """A left-padded batch of ``lfm2_vl_prompt``s, images concatenated in order."""
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    keys = ("pixel_values", "pixel_attention_mask", "spatial_shapes")
    return {"input_ids": ids, "attention_mask": mask, **{key: torch.cat([s[key] for s in singles]) for key in keys}}


# A hybrid decoder: LFM2's short-convolution layers 0 and 2 (pruned from 2).
CASES = {"lfm2_vl": on(tiny_lfm2_vl, lfm2_vl_prompt)}
