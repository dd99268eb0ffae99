"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from functools import partial

import torch

from fastv.selfcheck.case import WINDOW_TEXT, on
from fastv.selfcheck.tiny import IMAGE_TOKEN, TinyVLM, finish, mistral_text_config, seeded

IMAGE_BREAK_TOKEN = 124  # Pixtral's [IMG_BREAK] / [IMG_END]: text tokens between an image's rows
IMAGE_END_TOKEN = 125


@seeded
def tiny_mistral3(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, sliding_window: int | None = 12):
    """Mistral 3 (Pixtral vision tower, Mistral decoder whose window applies to every layer).

    A (h, w)-pixel image gives (h/8) x (w/8) image tokens; ``mistral3_image`` lays them out in rows
    closed by [IMG_BREAK] and the last by [IMG_END], as the processor does.
    """
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    text = mistral_text_config(layers, sliding_window)
    config = Mistral3Config(
        vision_config={
            "model_type": "pixtral",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 4,
            "head_dim": 16,
        },
        text_config=text.to_dict(),
        image_token_index=IMAGE_TOKEN,
        spatial_merge_size=2,
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )
    model = Mistral3ForConditionalGeneration(config)
    return TinyVLM(finish(model, attn_implementation, seed), image_tokens=0, image_size=32)


def mistral3_image_ids(size: tuple[int, int]) -> list[int]:
    """An image's placeholder ids: rows of image tokens, each closed by [IMG_BREAK], the last by [IMG_END]."""
    rows, cols = size[0] // 8, size[1] // 8
    ids: list[int] = []
    for row in range(rows):
        ids += [IMAGE_TOKEN] * cols + [IMAGE_END_TOKEN if row == rows - 1 else IMAGE_BREAK_TOKEN]
    return ids


MISTRAL3_SIZES = [(16, 32), (32, 16), (16, 16)]


def mistral3_prompt(vlm: TinyVLM, n_images: int = 2, seed: int = 0, before: int = 3) -> dict:
    """Images of different sizes, each laid out in rows closed by [IMG_BREAK] / [IMG_END] text tokens."""
    generator = torch.Generator().manual_seed(seed)
    sizes = [MISTRAL3_SIZES[(seed + i) % len(MISTRAL3_SIZES)] for i in range(n_images)]
    ids = torch.randint(3, IMAGE_TOKEN, (before,), generator=generator).tolist()
    for size in sizes:
        ids += mistral3_image_ids(size) + torch.randint(3, IMAGE_TOKEN, (1,), generator=generator).tolist()
    ids += torch.randint(3, IMAGE_TOKEN, (5,), generator=generator).tolist()
    ids = torch.tensor(ids)[None]
    pixels = torch.randn(n_images, 3, 32, 32, generator=generator)
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": pixels,
        "image_sizes": torch.tensor(sizes),
    }


RANK_WINDOW = 28  # the doctor case's window: prompt length - WINDOW_TEXT - 1 (see fastv.selfcheck.case)
CASES = {"mistral3": on(partial(tiny_mistral3, sliding_window=RANK_WINDOW), mistral3_prompt, before=WINDOW_TEXT)}
