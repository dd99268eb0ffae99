"""smolvlm (Llama decoder under `model.text_model`): the equivalence suite, images as (B, images, 3, H, W)."""

from __future__ import annotations

from functools import partial

from fastv.families.simple.selfcheck import tiny_idefics3
from fastv.selfcheck.prompts import image_prompt, image_runs
from tests.families import image_suite


def test_equivalence_suite():
    image_suite.run_all(tiny_idefics3(smolvlm=True), partial(image_prompt, stacked=True), image_runs, stack_pixels=True)
