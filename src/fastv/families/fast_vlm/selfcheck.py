"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

from fastv.selfcheck.case import on
from fastv.selfcheck.prompts import image_prompt
from fastv.selfcheck.tiny import IMAGE_TOKEN, TinyVLM, finish, qwen2_text_config, seeded


@seeded
def tiny_fast_vlm(attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0) -> TinyVLM:
    """FastVLM: LLaVA's layout around a Qwen2 decoder, fed a vision tower's flattened (B, C, h, w) feature map.

    The real tower is timm's FastViTHD (``timm_wrapper``), and timm is not a dependency: a tiny SAM ViT
    encoder stands in (an ``AutoModel`` with a (B, C, h, w) ``last_hidden_state`` that supports SDPA, as
    FastVLM's code needs; C = ``hidden_size``). A 16x16 image gives a 2x2 map: 4 image tokens. FastV only
    sees the decoder and the tokens.
    """
    from transformers import FastVlmConfig, FastVlmForConditionalGeneration, SamVisionConfig

    tower = SamVisionConfig(
        hidden_size=32,
        output_channels=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        mlp_dim=64,
        image_size=16,
        patch_size=8,
        global_attn_indexes=[0],
    )
    config = FastVlmConfig(
        vision_config=tower.to_dict(),
        text_config=qwen2_text_config(layers=layers).to_dict(),
        image_token_index=IMAGE_TOKEN,
        image_seq_length=4,
    )
    model = FastVlmForConditionalGeneration(config)
    return TinyVLM(finish(model, attn_implementation, seed), image_tokens=4, image_size=16)


CASES = {"fast_vlm": on(tiny_fast_vlm, image_prompt)}
