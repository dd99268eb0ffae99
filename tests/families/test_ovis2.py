"""Ovis2 (probabilistic visual tokens, Qwen2 decoder, visual indicator tokens around each image): the
equivalence suite; indicator tokens are never candidates."""

from __future__ import annotations

import torch

import fastv
from fastv.families.ovis2.selfcheck import OVIS2_INDICATORS, ovis2_prompt, tiny_ovis2
from fastv.selfcheck.prompts import image_runs
from tests.families import image_suite
from tests.families.equivalence import prefill_with_fastv
from tests.families.rankers import check_every_ranker


def test_indicator_tokens_carry_visual_embeddings_but_are_never_dropped():
    vlm = tiny_ovis2()
    inputs = ovis2_prompt(vlm)
    indicators = torch.isin(inputs["input_ids"][0], torch.tensor(OVIS2_INDICATORS))
    with torch.no_grad():
        embeds = vlm.model.model(**inputs, output_hidden_states=True).hidden_states[0][0]
    text_embeds = vlm.model.get_input_embeddings()(inputs["input_ids"][0])
    assert not torch.allclose(embeds[indicators], text_embeds[indicators])  # replaced by the visual table
    _, kept = prefill_with_fastv(vlm.model, inputs, fastv.FastVConfig(k=2, keep=1))  # one image token: the rest stays
    assert set(indicators.nonzero().squeeze(1).tolist()) <= set(kept.tolist())
    assert kept.numel() == inputs["input_ids"].shape[1] - int(image_suite.prunable(inputs).sum()) + 1


def test_equivalence_suite():
    image_suite.run_all(tiny_ovis2(), ovis2_prompt, image_runs)


def test_every_ranker_and_backend_over_8_decode_steps():
    check_every_ranker(tiny_ovis2, ovis2_prompt, image_suite.prunable)
