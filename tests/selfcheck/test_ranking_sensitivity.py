"""``fastv doctor`` sees a wrong ranking on every family: each case's kept set is decided by real, distinct
scores, and queries rebuilt without RoPE (or, where the ranking layer has none, with the wrong projection)
fail it. Making the ranking window reach the images must not hide the pruned layers' window: disabling it
fails every case whose pruned layers slide. Parametrised over ``CASES``, so a new family is covered without
being named here."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import fastv.patch
from fastv.families import Family, family_for, supported_families
from fastv.families.gemma3.selfcheck import gemma3_prompt, tiny_gemma3
from fastv.selfcheck import DOCTOR_CONFIG, build_case, doctor
from fastv.selfcheck.cases import CASES
from fastv.selfcheck.checks import ranking_ties
from fastv.selfcheck.reference import reference_scores
from fastv.selfcheck.tiny import IMAGE_TOKEN

# Cohere2 decoders (Aya Vision, Command A Vision) apply no positional encoding at all on their full-attention
# layers, and the doctor ranks on one (layer k - 1 = 1 of sliding, full, sliding, full): stripping RoPE from
# their queries changes nothing, so they are sabotaged through the query projection instead.
RANK_WITHOUT_ROPE = {"aya_vision", "cohere2_vision"}


def _available(model_type: str) -> None:
    reason = supported_families()[model_type].unavailable_reason()
    if reason:
        pytest.skip(reason)


def _candidates(case) -> tuple[torch.Tensor, int]:
    """A doctor case's candidates (its image tokens but the last token) and how many of them it drops."""
    candidates = case.prunable.clone()
    candidates[-1] = False
    return candidates, DOCTOR_CONFIG.n_dropped(int(candidates.sum()))


def _ranking(model_type: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The doctor case's reference scores, its candidates and drop count."""
    case = build_case(model_type, "sdpa")
    scores = reference_scores(case.model, case.inputs, DOCTOR_CONFIG.k, DOCTOR_CONFIG.rank)
    return scores, *_candidates(case)


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_every_doctor_case_is_ranked_by_distinct_scores(model_type):
    _available(model_type)
    assert ranking_ties(*_ranking(model_type)) is None


def test_the_tie_check_names_what_decides_the_kept_set():
    candidates = torch.tensor([True] * 6 + [False])
    scores = torch.tensor([0.0, 0.0, 0.0, 0.1, 0.2, 0.3, 0.5])
    assert ranking_ties(scores, candidates, 4) == (
        "3 of 6 candidates score exactly 0 (outside the ranking layer's window), more than half of the 4 dropped"
    )
    tied = torch.tensor([0.05, 0.1, 0.2, 0.2, 0.3, 0.4, 0.5])
    assert ranking_ties(tied, candidates, 3) == "the cut between dropped and kept falls between equal scores (0.2)"
    assert ranking_ties(tied, candidates, 2) is None
    assert ranking_ties(tied, candidates, 0) == "drops 0 of 6 candidates: nothing is ranked"


def test_the_tie_check_refuses_a_prompt_longer_than_the_ranking_window():
    """What the Gemma 3 doctor case was: window 8 on the ranking layer, 28 tokens, so 14 of 16 images score 0."""
    vlm = tiny_gemma3("sdpa")
    inputs = gemma3_prompt(vlm)
    candidates = inputs["input_ids"][0] == IMAGE_TOKEN
    scores = reference_scores(vlm.model, inputs, DOCTOR_CONFIG.k, DOCTOR_CONFIG.rank)
    reason = ranking_ties(scores, candidates, DOCTOR_CONFIG.n_dropped(int(candidates.sum())))
    assert reason.startswith("14 of 16 candidates score exactly 0")


QueryChange = Callable[[Callable, torch.nn.Module, torch.Tensor, tuple], torch.Tensor]


def _sabotage_queries(monkeypatch, change: QueryChange) -> list[bool]:
    """Every registered adapter rebuilds its ranking queries through ``change(queries, attention, hidden,
    position_embeddings)``; the instance attribute shadows any subclass's ``Family.queries`` override.
    Returns, per call, whether the sabotaged queries differ from the real ones."""
    differed: list[bool] = []
    adapters = {id(family): family for family in supported_families().values()}.values()
    for family in adapters:
        assert isinstance(family, Family)
        real = family.queries

        def broken(attention, hidden, position_embeddings, real=real):
            queries = change(real, attention, hidden, position_embeddings)
            differed.append(not torch.equal(queries, real(attention, hidden, position_embeddings)))
            return queries

        monkeypatch.setattr(family, "queries", broken)
    return differed


def _without_rope(real, attention, hidden, position_embeddings) -> torch.Tensor:
    """cos = 1, sin = 0: every rotary (1-D, M-RoPE, XD-RoPE, interleaved) becomes the identity."""
    cos, sin = position_embeddings
    return real(attention, hidden, (torch.ones_like(cos), torch.zeros_like(sin)))


def _negated_projection(real, attention, hidden, position_embeddings) -> torch.Tensor:
    """The queries with the wrong sign, as a negated q_proj weight gives them (RMS norms and rotations are odd)."""
    return -real(attention, hidden, position_embeddings)


def _assert_ranking_fails(model_type: str) -> None:
    (row,) = doctor(attn=["sdpa"], families=[model_type]).rows
    assert row.verdict == "FAIL" and row.detail == "kept set differs from eager attention", row
    assert row.ratio_zero_identical and row.remove_restores  # only the ranking is broken


@pytest.mark.parametrize("model_type", sorted(set(CASES) - RANK_WITHOUT_ROPE))
def test_doctor_fails_when_the_ranking_queries_lose_rope(monkeypatch, model_type):
    _available(model_type)
    differed = _sabotage_queries(monkeypatch, _without_rope)
    _assert_ranking_fails(model_type)
    assert any(differed), f"{model_type}'s ranking layer applies no RoPE: add it to RANK_WITHOUT_ROPE"


@pytest.mark.parametrize("model_type", sorted(RANK_WITHOUT_ROPE))
def test_families_ranking_without_rope_fail_with_a_wrong_query_projection(monkeypatch, model_type):
    _available(model_type)
    differed = _sabotage_queries(monkeypatch, _without_rope)
    assert doctor(attn=["sdpa"], families=[model_type]).ok and differed and not any(differed)  # no RoPE there
    monkeypatch.undo()
    _sabotage_queries(monkeypatch, _negated_projection)
    _assert_ranking_fails(model_type)


def _pruned_layers_slide(model_type: str) -> bool:
    """Whether a pruned layer's window (it counts kept tokens) is shorter than the case's kept sequence."""
    case = build_case(model_type, "sdpa")
    family = family_for(case.model)
    language_model = family.language_model(case.model)
    text_config = family.text_config(language_model)
    kept = case.inputs["input_ids"].shape[1] - _candidates(case)[1]
    layers = family.decoder_layers(language_model)
    windows = [
        family.sliding_window(layers[i], text_config)
        for i in range(DOCTOR_CONFIG.k, len(layers))
        if not family.is_recurrent(i, text_config)
    ]
    return any(window is not None and window < kept for window in windows)


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_doctor_fails_when_the_pruned_layers_ignore_their_window(monkeypatch, model_type):
    """Pruned layers' masks built without their sliding window: every case with a window that cuts fails."""
    _available(model_type)
    slides = _pruned_layers_slide(model_type)
    overlay = fastv.patch.sliding_window_overlay
    monkeypatch.setattr(fastv.patch, "sliding_window_overlay", lambda window: overlay(2**30))
    monkeypatch.setattr(fastv.patch, "create_sliding_window_causal_mask", fastv.patch.create_causal_mask)
    (row,) = doctor(attn=["sdpa"], families=[model_type]).rows
    assert row.verdict == ("FAIL" if slides else "ok"), row
    if slides:
        assert row.detail.startswith("max diff") and row.kept_matches, row
