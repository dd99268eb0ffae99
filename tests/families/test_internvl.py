"""InternVL (Qwen2 decoder): the equivalence suite."""

from __future__ import annotations

from fastv.families.simple.selfcheck import tiny_internvl
from fastv.selfcheck.prompts import image_prompt, image_runs
from tests.families import image_suite


def test_equivalence_suite():
    image_suite.run_all(tiny_internvl(), image_prompt, image_runs)
