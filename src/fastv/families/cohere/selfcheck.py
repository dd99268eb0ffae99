"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from functools import partial

from fastv.selfcheck.case import on
from fastv.selfcheck.prompts import image_prompt
from fastv.selfcheck.tiny import IMAGE_TOKEN, PAD_TOKEN, VOCAB, TinyVLM, finish, seeded, siglip_config


def cohere2_text_config(layers: int = 4, sliding_window: int = 8) -> dict:
    """A tiny Cohere2 decoder: sliding layers (RoPE, window) alternate with full layers (no RoPE at all)."""
    return {
        "model_type": "cohere2",
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "sliding_window": sliding_window,
        "layer_types": ["sliding_attention", "full_attention"] * (layers // 2) + ["sliding_attention"] * (layers % 2),
        "max_position_embeddings": 1024,
        "pad_token_id": PAD_TOKEN,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "tie_word_embeddings": False,
    }


@seeded
def tiny_cohere_vlm(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, variant: str = "aya_vision"):
    """Aya Vision (``aya_vision``) or Command A Vision (``cohere2_vision``): SigLIP features of a 16x16 tile,
    pixel-shuffled 2x2 into 4 image tokens, and a Cohere2 decoder (``cohere2_text_config``)."""
    import transformers

    common = {
        "vision_config": siglip_config(),
        "text_config": cohere2_text_config(layers=layers),
        "downsample_factor": 2,
        "tie_word_embeddings": False,
    }
    if variant == "aya_vision":
        config = transformers.AyaVisionConfig(**common, image_token_index=IMAGE_TOKEN)
        model = transformers.AyaVisionForConditionalGeneration(config)
    else:
        config = transformers.Cohere2VisionConfig(**common, image_token_id=IMAGE_TOKEN, alignment_intermediate_size=128)
        model = transformers.Cohere2VisionForConditionalGeneration(config)
    return TinyVLM(finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


CASES = {
    "aya_vision": on(tiny_cohere_vlm, image_prompt, n_images=4),
    "cohere2_vision": on(partial(tiny_cohere_vlm, variant="cohere2_vision"), image_prompt, n_images=4),
}
