"""Mistral 3 (Pixtral tower, Mistral decoder with a sliding window on every layer): the equivalence suite.

Images of different sizes give different token counts, laid out in rows broken by [IMG_BREAK] text
tokens, so per-image budgets must group an image's rows (read from image_sizes), not contiguous runs.
"""

from __future__ import annotations

import pytest
import torch

from fastv.families.mistral3.selfcheck import mistral3_prompt, tiny_mistral3
from fastv.selfcheck.reference import language_model
from tests.families import image_suite


def _images(inputs: dict) -> torch.Tensor:
    """(n,) image index of each image token: image i owns the next rows * cols image tokens."""
    image = image_suite.prunable(inputs)
    counts = [(h // 8) * (w // 8) for h, w in inputs["image_sizes"].tolist()]
    owner = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    segments = torch.full(image.shape, -1)
    segments[image] = owner
    return segments


def test_equivalence_suite():
    vlm = tiny_mistral3()
    config = language_model(vlm.model).config
    assert config.sliding_window == 12 and getattr(config, "layer_types", None) is None
    image_suite.run_all(vlm, mistral3_prompt, _images)


def test_mistral_small_4_with_latent_attention_is_refused():
    """Mistral Small 4 checkpoints are model_type="mistral3" around a Mistral 4 decoder whose attention
    (MLA) caches compressed latents: refused at apply, before a forward could crash."""
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration
    from transformers.models.mistral4.configuration_mistral4 import Mistral4Config

    import fastv
    from fastv import UnsupportedModelError

    text = Mistral4Config(
        vocab_size=128, hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, n_shared_experts=1, n_routed_experts=4, num_experts_per_tok=2,
        kv_lora_rank=16, q_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=16,
    )  # fmt: skip
    vision = {"model_type": "pixtral", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 2, "image_size": 32, "patch_size": 4, "head_dim": 16}  # fmt: skip
    model = Mistral3ForConditionalGeneration(
        Mistral3Config(vision_config=vision, text_config=text.to_dict(), image_token_index=120, spatial_merge_size=2)
    )
    with pytest.raises(UnsupportedModelError, match=r"'mistral4' decoder: its attention \(Mistral4Attention\) has no"):
        fastv.apply(model, fastv.FastVConfig())
    assert not fastv.is_applied(model)
