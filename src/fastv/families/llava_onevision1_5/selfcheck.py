"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

import torch

from fastv.selfcheck.case import on
from fastv.selfcheck.tiny import IMAGE_TOKEN, PAD_TOKEN, VIDEO_TOKEN, VOCAB, TinyQwenVL, finish, seeded

LLAVA_ONEVISION1_5_MARKERS = (122, 123)  # LLaVA-OneVision-1.5's vision start / end, around every image and video


@seeded
def tiny_llava_onevision1_5(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyQwenVL:
    """LLaVA-OneVision-1.5: packed 4x4-pixel patches (no temporal patch) with ``grid_thw`` through a 2-layer
    Rice ViT (2-D rotary, a class token per frame, each frame attending within itself), merged 2x2, a Qwen3
    decoder (q/k norms, 1-D positions); images and videos sit between vision start / end markers (text
    tokens). A (t, h, w) grid of patches gives t * h * w / 4 tokens."""
    from transformers import LlavaOnevision15Config, LlavaOnevision15ForConditionalGeneration

    start, end = LLAVA_ONEVISION1_5_MARKERS
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
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "patch_size": 4,
        "spatial_merge_size": 2,
        "out_hidden_size": 64,
    }
    config = LlavaOnevision15Config(
        vision_config=vision,
        text_config=text,
        image_token_id=IMAGE_TOKEN,
        video_token_id=VIDEO_TOKEN,
        vision_start_token_id=start,
        vision_end_token_id=end,
    )
    model = LlavaOnevision15ForConditionalGeneration(config)
    return TinyQwenVL(finish(model, attn_implementation, seed), patch_dim=3 * 4 * 4, merge=2)


def llava_onevision1_5_prompt(
    vlm: TinyQwenVL, n_images: int = 2, seed: int = 0, before: int = 3, frames: int = 0
) -> dict:
    """LLaVA-OneVision-1.5 (its processor is Exaone 4.5's, Qwen2-VL's layout): images of alternating 4x4 /
    4x6-patch grids, then a video of ``frames`` 4x4-patch frames (one run of video tokens), each as
    ``<|vision_start|>`` + grid_thw.prod() / 4 placeholders + ``<|vision_end|>``, followed by text."""
    from fastv.families.llava_onevision1_5.selfcheck import LLAVA_ONEVISION1_5_MARKERS

    start, end = LLAVA_ONEVISION1_5_MARKERS
    generator = torch.Generator().manual_seed(seed)

    def text(n: int) -> list[int]:
        return torch.randint(3, IMAGE_TOKEN, (n,), generator=generator).tolist()

    ids, inputs, patches, grids = text(before), {}, [], []
    for i in range(n_images):
        pixels, grid, count = vlm.visual((1, 4, 4 + 2 * (i % 2)), seed=seed + i)
        ids += [start] + [IMAGE_TOKEN] * count + [end] + text(1)
        patches.append(pixels)
        grids.append(grid)
    if patches:
        inputs |= {"pixel_values": torch.cat(patches), "image_grid_thw": torch.cat(grids)}
    if frames:
        pixels, grid, count = vlm.visual((frames, 4, 4), seed=seed + 100)
        ids += [start] + [VIDEO_TOKEN] * count + [end] + text(1)
        inputs |= {"pixel_values_videos": pixels, "video_grid_thw": grid}
    ids = torch.tensor(ids + text(4))[None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), **inputs}


CASES = {"llava_onevision1_5": on(tiny_llava_onevision1_5, llava_onevision1_5_prompt, frames=2)}  # 5.25 on
