"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

import torch

from fastv.selfcheck.case import on
from fastv.selfcheck.tiny import (
    IMAGE_TOKEN,
    PAD_TOKEN,
    VIDEO_TOKEN,
    VOCAB,
    TinyQwenVL,
    TinyVLM,
    finish,
    qwen2_text_config,
    seeded,
)

OVIS2_INDICATORS = (122, 123, 124, 125, 126)  # visual indicator ids (image / tile delimiters), text-side tokens


@seeded
def tiny_ovis2(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyVLM:
    """Ovis2: each 16x16 image's 16 patches merged 2x2 (``hidden_stride``) into 4 probabilistic visual
    tokens (softmax over a 64-entry visual vocabulary, embedded by a table), a Qwen2 decoder, and 5
    visual indicator tokens whose embeddings come from the same table (they are not image tokens)."""
    from transformers import Ovis2Config, Ovis2ForConditionalGeneration

    config = Ovis2Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 16,
            "patch_size": 4,
            "vocab_size": 64,
            "hidden_stride": 2,
            "num_visual_indicator_tokens": len(OVIS2_INDICATORS),
        },
        text_config=qwen2_text_config(layers=layers).to_dict(),
        image_token_id=IMAGE_TOKEN,
        visual_indicator_token_ids=list(OVIS2_INDICATORS),
        vocab_size=VOCAB,
        hidden_size=64,
        tie_word_embeddings=False,
    )
    model = Ovis2ForConditionalGeneration(config)
    return TinyVLM(finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


OVIS2_5_MARKERS = (122, 123, 124, 125)  # Ovis2.5's image start / end and video start / end (indicator embeddings)


@seeded
def tiny_ovis2_5(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyQwenVL:
    """Ovis2.5: packed 4x4-pixel patches with ``grid_thw`` through a 2-layer NaViT tower (window and full
    attention), merged 2x2 into probabilistic visual tokens (64-entry visual vocabulary), a Qwen3 decoder
    (q/k norms, 1-D positions); images and videos sit between start / end markers that get indicator
    embeddings. A (t, h, w) grid of patches gives t * h * w / 4 tokens."""
    from transformers import Ovis2_5Config, Ovis2_5ForConditionalGeneration

    image_start, image_end, video_start, video_end = OVIS2_5_MARKERS
    text = {
        "model_type": "qwen3",
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 1024,
        "pad_token_id": PAD_TOKEN,
        "tie_word_embeddings": False,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "patch_size": 4,
        "image_size": 16,
        "spatial_merge_size": 2,
        "window_size": 16,
        "vocab_size": 64,
        "num_visual_indicator_tokens": 4,
        "temporal_patch_size": 1,
    }
    config = Ovis2_5Config(
        vision_config=vision,
        text_config=text,
        image_token_id=IMAGE_TOKEN,
        video_token_id=VIDEO_TOKEN,
        image_start_token_id=image_start,
        image_end_token_id=image_end,
        video_start_token_id=video_start,
        video_end_token_id=video_end,
    )
    model = Ovis2_5ForConditionalGeneration(config)
    return TinyQwenVL(finish(model, attn_implementation, seed), patch_dim=3 * 4 * 4, merge=2)


def ovis2_prompt(vlm: TinyVLM, n_images: int = 2, seed: int = 0, before: int = 3) -> dict:
    """Ovis2: each image's tokens between visual indicator tokens (start / end markers, embedded from the
    visual table; never pruned), images separated by text."""
    from fastv.families.ovis2.selfcheck import OVIS2_INDICATORS

    generator = torch.Generator().manual_seed(seed)

    def text(n: int) -> list[int]:
        return torch.randint(3, IMAGE_TOKEN, (n,), generator=generator).tolist()

    ids = text(before)
    for _ in range(n_images):
        ids += [OVIS2_INDICATORS[0]] + [IMAGE_TOKEN] * vlm.image_tokens + [OVIS2_INDICATORS[4]] + text(1)
    ids = torch.tensor(ids + text(5))[None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": vlm.pixel_values(n_images, seed)}


def ovis2_5_prompt(vlm: TinyQwenVL, n_images: int = 2, seed: int = 0, before: int = 3, frames: int = 0) -> dict:
    """Ovis2.5: images of alternating 4x4 / 4x6-patch grids, then a video of ``frames`` 4x4-patch frames (one
    run of video tokens), each between its start / end markers and followed by text."""
    from fastv.families.ovis2.selfcheck import OVIS2_5_MARKERS

    image_start, image_end, video_start, video_end = OVIS2_5_MARKERS
    generator = torch.Generator().manual_seed(seed)

    def text(n: int) -> list[int]:
        return torch.randint(3, IMAGE_TOKEN, (n,), generator=generator).tolist()

    ids, inputs, patches, grids = text(before), {}, [], []
    for i in range(n_images):
        pixels, grid, count = vlm.visual((1, 4, 4 + 2 * (i % 2)), seed=seed + i)
        ids += [image_start] + [IMAGE_TOKEN] * count + [image_end] + text(1)
        patches.append(pixels)
        grids.append(grid)
    if patches:
        inputs |= {"pixel_values": torch.cat(patches), "image_grid_thw": torch.cat(grids)}
    if frames:
        pixels, grid, count = vlm.visual((frames, 4, 4), seed=seed + 100)
        ids += [video_start] + [VIDEO_TOKEN] * count + [video_end] + text(1)
        inputs |= {"pixel_values_videos": pixels, "video_grid_thw": grid}
    ids = torch.tensor(ids + text(4))[None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), **inputs}


CASES = {
    "ovis2": on(tiny_ovis2, ovis2_prompt),
    "ovis2_5": on(tiny_ovis2_5, ovis2_5_prompt, frames=2),  # transformers 5.25 on
}
