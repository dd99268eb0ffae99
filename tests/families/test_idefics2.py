"""Idefics2 (perceiver-resampled image tokens, Mistral decoder with a window on every layer, under
`model.text_model`): the equivalence suite, images as (B, images, 3, H, W)."""

from __future__ import annotations

from functools import partial

from fastv.families.idefics2.selfcheck import tiny_idefics2
from fastv.selfcheck.prompts import image_prompt, image_runs
from fastv.selfcheck.reference import language_model
from tests.families import image_suite
from tests.families.rankers import check_every_ranker

stacked = partial(image_prompt, stacked=True)


def test_tiny_model_has_a_windowed_mistral_text_model():
    vlm = tiny_idefics2()
    lm = language_model(vlm.model)
    assert lm is vlm.model.model.text_model and lm.config.sliding_window == 12
    assert type(lm.layers[0].self_attn).__name__ == "MistralAttention"


def test_equivalence_suite():
    image_suite.run_all(tiny_idefics2(), stacked, image_runs, stack_pixels=True)


def test_every_ranker_and_backend_over_8_decode_steps():
    check_every_ranker(tiny_idefics2, partial(stacked, n_images=4), image_suite.prunable)
