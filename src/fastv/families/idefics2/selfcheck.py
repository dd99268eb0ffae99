"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from functools import partial

from fastv.selfcheck.case import WINDOW_TEXT, on
from fastv.selfcheck.prompts import image_prompt
from fastv.selfcheck.tiny import IMAGE_TOKEN, TinyVLM, finish, mistral_text_config, seeded


@seeded
def tiny_idefics2(
    attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, sliding_window: int | None = 12
) -> TinyVLM:
    """Idefics2: SigLIP-style patches resampled by a perceiver into 4 latent image tokens per image, and a
    Mistral decoder (by default window 12 on every layer) under ``model.text_model``; images as (B, images, 3, H, W)."""
    from transformers import Idefics2Config, Idefics2ForConditionalGeneration

    text = mistral_text_config(layers, sliding_window=sliding_window)
    config = Idefics2Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 16,
            "patch_size": 4,
        },
        perceiver_config={
            "hidden_size": 64,
            "resampler_n_latents": 4,
            "resampler_depth": 1,
            "resampler_n_heads": 2,
            "resampler_head_dim": 16,
            "num_key_value_heads": 1,
        },
        text_config=text.to_dict(),
        image_token_id=IMAGE_TOKEN,
        tie_word_embeddings=False,
    )
    model = Idefics2ForConditionalGeneration(config)
    return TinyVLM(finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


RANK_WINDOW = 24  # the doctor case's window: prompt length - WINDOW_TEXT - 1 (see fastv.selfcheck.case)
CASES = {
    "idefics2": on(
        partial(tiny_idefics2, sliding_window=RANK_WINDOW), image_prompt, n_images=4, stacked=True, before=WINDOW_TEXT
    )
}
