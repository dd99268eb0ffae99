"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from functools import partial

from fastv.selfcheck.case import on
from fastv.selfcheck.prompts import image_prompt
from fastv.selfcheck.tiny import IMAGE_TOKEN, TinyVLM, finish, qwen2_text_config, seeded, text_config


@seeded
def tiny_internvl(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyVLM:
    """InternVL with a Qwen2 decoder: each 16x16 tile gives (16/4)^2 * 0.5^2 = 4 image tokens."""
    from transformers import InternVLConfig, InternVLForConditionalGeneration

    config = InternVLConfig(
        vision_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "image_size": [16, 16],
            "patch_size": [4, 4],
        },
        text_config=qwen2_text_config(layers=layers).to_dict(),
        image_token_id=IMAGE_TOKEN,
        image_seq_length=4,
        downsample_ratio=0.5,
        tie_word_embeddings=False,
    )
    model = InternVLForConditionalGeneration(config)
    return TinyVLM(finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


@seeded
def tiny_idefics3(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, smolvlm: bool = False) -> TinyVLM:
    """Idefics3 (or SmolVLM) with a Llama decoder: a 16x16 image gives (16/4)^2 / 2^2 = 4 image tokens."""
    if smolvlm:
        from transformers import SmolVLMConfig as Config
        from transformers import SmolVLMForConditionalGeneration as Model
    else:
        from transformers import Idefics3Config as Config
        from transformers import Idefics3ForConditionalGeneration as Model

    config = Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 16,
            "patch_size": 4,
        },
        text_config=text_config(layers=layers).to_dict(),
        image_token_id=IMAGE_TOKEN,
        scale_factor=2,
        tie_word_embeddings=False,
    )
    model = Model(config)
    return TinyVLM(finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


CASES = {
    "internvl": on(tiny_internvl, image_prompt),
    "idefics3": on(tiny_idefics3, image_prompt, stacked=True),
    "smolvlm": on(partial(tiny_idefics3, smolvlm=True), image_prompt, stacked=True),
}
