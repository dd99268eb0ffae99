"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from fastv.selfcheck.case import WINDOW_TEXT, Case, case_of
from fastv.selfcheck.prompts import image_prompt, image_runs
from fastv.selfcheck.tiny import IMAGE_TOKEN, PAD_TOKEN, VOCAB, TinyVLM, finish, seeded


@seeded
def tiny_gemma3(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, sliding_window: int = 8) -> TinyVLM:
    """Gemma 3: sliding / full layer types with their own rotary bases, q/k norms, query_pre_attn_scalar
    (not head_dim), 4 tokens per image attending to each other bidirectionally."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig

    text = {
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "query_pre_attn_scalar": 24,
        "sliding_window": sliding_window,
        "layer_types": ["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"][:layers],
        "rope_parameters": {
            "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        },
        "max_position_embeddings": 1024,
        "pad_token_id": PAD_TOKEN,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    vision = SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=16, patch_size=4
    )
    config = Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=4,
        image_token_id=IMAGE_TOKEN,
        boi_token_id=122,
        eoi_token_id=123,
        tie_word_embeddings=False,
    )
    model = Gemma3ForConditionalGeneration(config)
    return TinyVLM(finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


def gemma3_prompt(vlm: TinyVLM, n_images: int = 4, seed: int = 0, before: int = 3, types: bool = True) -> dict:
    """An image prompt with the ``token_type_ids`` Gemma 3's processor returns (they mark the bidirectional blocks)."""
    inputs = image_prompt(vlm, n_images, seed, before)
    if types:
        inputs["token_type_ids"] = (inputs["input_ids"] == IMAGE_TOKEN).long()
    return inputs


RANK_WINDOW = 24  # the doctor case's window: prompt length - WINDOW_TEXT - 1 (see fastv.selfcheck.case)


def _gemma3_case(attn: str) -> Case:
    vlm = tiny_gemma3(attn, sliding_window=RANK_WINDOW)
    inputs = gemma3_prompt(vlm, before=WINDOW_TEXT)
    return case_of(vlm, inputs, blocks=image_runs(inputs))


CASES = {"gemma3": _gemma3_case}
