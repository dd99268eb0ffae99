"""VipLLaVA (LLaVA with multi-layer vision features, Llama decoder): the equivalence suite."""

from __future__ import annotations

from fastv.families.llava.selfcheck import tiny_vipllava
from fastv.selfcheck.prompts import image_prompt, image_runs
from fastv.selfcheck.reference import language_model
from tests.families import image_suite
from tests.families.rankers import check_every_ranker


def test_tiny_model_reads_several_vision_layers():
    vlm = tiny_vipllava()
    assert list(vlm.model.config.vision_feature_layers) == [-2, -1]
    assert type(language_model(vlm.model).layers[0].self_attn).__name__ == "LlamaAttention"


def test_equivalence_suite():
    image_suite.run_all(tiny_vipllava(), image_prompt, image_runs)


def test_every_ranker_and_backend_over_8_decode_steps():
    check_every_ranker(tiny_vipllava, image_prompt, image_suite.prunable)
