"""The self-check of this family: its tiny random-weight model(s) built from a config (no download),
its prompt builder(s) and its doctor case(s)."""

from __future__ import annotations

import torch

from fastv.selfcheck.case import Case, case_of
from fastv.selfcheck.tiny import IMAGE_TOKEN, PAD_TOKEN, VOCAB, TinyVLM, finish, seeded, siglip_config


@seeded
def tiny_paligemma(
    attn_implementation: str = "sdpa", layers: int = 4, seed: int = 0, gemma2: bool = False, sliding_window: int = 64
) -> TinyVLM:
    """PaliGemma: 16 SigLIP tokens per 16x16 image, then the prompt, all one bidirectional prefix.

    PaliGemma 1's Gemma decoder, or with ``gemma2`` PaliGemma 2's Gemma 2 decoder: sliding / full layers,
    attention-logit and final-logit soft-capping, ``query_pre_attn_scalar``. Gemma 2 has no SDPA in
    transformers (soft-capping): build it with ``attn_implementation="eager"``. The window (64) holds the
    test prompts' prefixes (FastV refuses longer ones, see ``fastv.families.paligemma``).
    """
    from transformers import Gemma2Config, GemmaConfig, PaliGemmaConfig, PaliGemmaForConditionalGeneration

    text = {
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 1024,
        "pad_token_id": PAD_TOKEN,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    if gemma2:
        extra = {"sliding_window": sliding_window, "query_pre_attn_scalar": 24}
        text = Gemma2Config(**text, **extra, attn_logit_softcapping=50.0, final_logit_softcapping=30.0)
    else:
        text = GemmaConfig(**text)
    config = PaliGemmaConfig(
        vision_config=siglip_config(),
        text_config=text.to_dict(),
        image_token_index=IMAGE_TOKEN,
        projection_dim=64,
        hidden_size=64,
        vocab_size=VOCAB,
        tie_word_embeddings=False,
    )
    model = PaliGemmaForConditionalGeneration(config)
    return TinyVLM(finish(model, attn_implementation, seed), image_tokens=16, image_size=16)


def paligemma_prompt(vlm: TinyVLM, n_images: int = 1, seed: int = 0, before: int = 3, types: bool = True) -> dict:
    """PaliGemma's layout: every image's tokens first, then BOS, the prompt and its closing token, with the
    ``token_type_ids`` its processor returns (0: the bidirectional prefix, here the whole prompt)."""
    generator = torch.Generator().manual_seed(seed)
    text = torch.randint(3, IMAGE_TOKEN, (before + 5,), generator=generator).tolist()
    ids = torch.tensor([IMAGE_TOKEN] * (vlm.image_tokens * n_images) + [1] + text)[None]
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": vlm.pixel_values(n_images, seed),
    }
    if types:
        inputs["token_type_ids"] = torch.zeros_like(ids)
    return inputs


def one_based_positions(n: int) -> torch.Tensor:
    """PaliGemma's rotary positions of the first n tokens: 1, 2, ..., n."""
    return torch.arange(1, n + 1)[None]


def _paligemma_case(attn: str) -> Case:
    """PaliGemma 1 (Gemma decoder; PaliGemma 2's Gemma 2 has no SDPA): two images and the prompt, one
    bidirectional prefix, at 1-based positions."""
    vlm = tiny_paligemma(attn)
    inputs = paligemma_prompt(vlm, n_images=2)
    prefix = torch.zeros(inputs["input_ids"].shape[1], dtype=torch.long)
    return case_of(vlm, inputs, positions=one_based_positions, blocks=prefix)


CASES = {"paligemma": _paligemma_case}
