"""FastVLM (LLaVA layout, Qwen2 decoder; a tiny SAM ViT stands in for timm's
FastViTHD): the equivalence suite."""

from __future__ import annotations

from fastv.compat import stacked_image_features
from fastv.families.fast_vlm.selfcheck import tiny_fast_vlm
from fastv.selfcheck.prompts import image_prompt, image_runs
from fastv.selfcheck.reference import language_model
from tests.families import image_suite
from tests.families.rankers import check_every_ranker


def test_tiny_model_has_a_qwen2_decoder_and_a_4_token_grid():
    vlm = tiny_fast_vlm()
    assert type(language_model(vlm.model).layers[0].self_attn).__name__ == "Qwen2Attention"
    features = stacked_image_features(
        vlm.model.model.get_image_features(pixel_values=vlm.pixel_values(2)).pooler_output
    )
    assert tuple(features.shape[:2]) == (2, vlm.image_tokens)


def test_equivalence_suite():
    image_suite.run_all(tiny_fast_vlm(), image_prompt, image_runs)


def test_every_ranker_and_backend_over_8_decode_steps():
    check_every_ranker(tiny_fast_vlm, image_prompt, image_suite.prunable)
