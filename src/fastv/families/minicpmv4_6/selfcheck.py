"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

import torch

from fastv.compat import minicpmv4_6_packs_mixed_sizes
from fastv.selfcheck.case import on
from fastv.selfcheck.tiny import (
    IMAGE_TOKEN,
    VIDEO_TOKEN,
    TinyNaFlexVLM,
    finish,
    left_pad,
    mm_prompt,
    qwen_text_kwargs,
    seeded,
)


@seeded
def tiny_minicpmv4_6(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyNaFlexVLM:
    """MiniCPM-V 4.6: a NaViT vision tower whose window-attention merger (after block 0) and final merger each
    merge 2x2 patches (an (h, w)-patch image gives h * w / 16 tokens), and Qwen3.5's hybrid text decoder
    (Gated DeltaNet / gated full attention alternating) with plain 1-D positions."""
    from transformers import MiniCPMV4_6Config, MiniCPMV4_6ForConditionalGeneration

    text = qwen_text_kwargs(layers)
    text |= {
        "model_type": "qwen3_5_text",
        "head_dim": 16,
        "layer_types": ["linear_attention", "full_attention"] * (layers // 2) + ["linear_attention"] * (layers % 2),
        "linear_conv_kernel_dim": 4,
        "linear_key_head_dim": 8,
        "linear_value_head_dim": 8,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
        "tie_word_embeddings": False,
    }
    text["rope_parameters"] = {
        **text["rope_parameters"],
        "mrope_section": [2, 1, 1],
        "mrope_interleaved": True,
        "partial_rotary_factor": 0.5,
    }
    config = MiniCPMV4_6Config(
        text_config=text,
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 4,
        },
        insert_layer_id=0,
        image_token_id=IMAGE_TOKEN,
        video_token_id=VIDEO_TOKEN,
        tie_word_embeddings=False,
    )
    model = MiniCPMV4_6ForConditionalGeneration(config)
    return TinyNaFlexVLM(finish(model, attn_implementation, seed), patch=4, tokens_per_patch_block=16)


def minicpmv_prompt(
    vlm: TinyNaFlexVLM,
    sizes: tuple[tuple[int, int], ...] = ((8, 8), (8, 16)),
    frames: int = 0,
    seed: int = 0,
    before: int = 3,
    packable: bool = True,
) -> dict:
    """MiniCPM-V 4.6: text, images of ``sizes`` (h, w patches), then a video of ``frames`` 8x8-patch frames,
    each image and frame its own run of tokens; patches NaViT-packed into one row, as its processor does.

    ``packable``: where the release's vision tower cannot pack images of different sizes (up to 5.18), every image
    is 8x8 patches instead (also across a ``minicpmv_batch``); False keeps ``sizes`` to test the refusal.
    """
    if packable and not minicpmv4_6_packs_mixed_sizes():
        sizes = tuple((8, 8) for _ in sizes)
    segments = [(IMAGE_TOKEN, vlm.tokens(size)) for size in sizes] + [(VIDEO_TOKEN, vlm.tokens((8, 8)))] * frames
    ids, _ = mm_prompt(before, segments, 5, seed=seed)
    inputs = {"input_ids": ids[None], "attention_mask": torch.ones_like(ids[None])}
    if sizes:
        inputs["pixel_values"], inputs["target_sizes"] = vlm.packed_patches(list(sizes), seed)
    if frames:
        inputs["pixel_values_videos"], inputs["target_sizes_videos"] = vlm.packed_patches([(8, 8)] * frames, seed + 1)
    return inputs


def minicpmv_batch(singles: list[dict]) -> dict:
    """A left-padded batch of image-only ``minicpmv_prompt``s: every image's patches packed into one row."""
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    pixels = torch.cat([s["pixel_values"] for s in singles], dim=-1)
    sizes = torch.cat([s["target_sizes"] for s in singles])
    return {"input_ids": ids, "attention_mask": mask, "pixel_values": pixels, "target_sizes": sizes}


# MiniCPM-V 4.6's decoder is Qwen3.5's hybrid one.
CASES = {"minicpmv4_6": on(tiny_minicpmv4_6, minicpmv_prompt, frames=3)}
