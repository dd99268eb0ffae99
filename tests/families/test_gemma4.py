"""Gemma 4 (26B-A4B / 31B style): sliding and full layers with their own head size, key/value heads and
rotary (full: partial "proportional" RoPE, keys = values), bidirectional image / video-frame blocks on
sliding layers only, logit soft-capping, an optional MoE block; E2B / E4B features refused."""

from __future__ import annotations

import types

import pytest
import torch

import fastv
from fastv import compat
from fastv.errors import FastVError, UnsupportedModelError
from fastv.families import family_for
from fastv.families.gemma4 import Gemma4Family
from fastv.families.gemma4.selfcheck import gemma4_batch, gemma4_prompt, gemma4_visual, tiny_gemma4, vision_runs
from fastv.selfcheck.reference import language_model
from tests.families.equivalence import (
    assert_batch_matches_singles,
    assert_full_width_batch_matches_singles,
    assert_ratio_zero_identical,
    assert_remove_restores,
    check_against_reference,
)

# A 2-frame video after the images, where this release's Gemma 4 can encode videos at all (5.23 on).
FRAMES = 2 if compat.gemma4_runs_videos() else 0
NEEDS_VIDEOS = pytest.mark.skipif(
    not FRAMES, reason="Gemma4Model.forward drops num_frames_per_video before transformers 5.23: no video runs"
)


@pytest.fixture(scope="module")
def gemma():
    return tiny_gemma4()


def _prunable(inputs: dict) -> torch.Tensor:
    return gemma4_visual(inputs)


def test_tiny_model_has_the_features_under_test(gemma):
    layers = language_model(gemma.model).layers
    attention = [layer.self_attn for layer in layers]
    assert [a.sliding_window for a in attention] == [8, None, 8, None]
    assert [a.head_dim for a in attention] == [16, 32, 16, 32]
    assert [a.num_key_value_groups for a in attention] == [1, 2, 1, 2]
    assert [a.v_proj is None for a in attention] == [False, True, False, True]  # keys double as values
    assert all(a.scaling == 1.0 and hasattr(a, "q_norm") for a in attention)
    assert gemma.model.config.text_config.final_logit_softcapping == 30.0
    assert gemma.model.config.text_config.use_bidirectional_attention == "vision"


def test_ratio_zero_is_identical_to_unpatched_model(gemma):
    assert_ratio_zero_identical(gemma.model, gemma4_prompt(gemma, frames=FRAMES))


@pytest.mark.parametrize(
    ("k", "rank"),
    [(1, "mean"), (2, "mean"), (3, "mean"), (1, "last_token"), (2, "last_token"), (3, "random")],
)
def test_prefill_and_decode_match_reference(gemma, k, rank):
    """Images and a 2-frame video. k=1 / 3 rank on a sliding layer, k=2 on a full one; pruned layers mix both."""
    inputs = gemma4_prompt(gemma, frames=FRAMES)
    config = fastv.FastVConfig(k=k, ratio=0.5, rank=rank)
    check_against_reference(gemma.model, inputs, config, _prunable(inputs), blocks=vision_runs(inputs))


def test_moe_variant_matches_reference():
    vlm = tiny_gemma4(moe=True)
    inputs = gemma4_prompt(vlm, frames=FRAMES)
    config = fastv.FastVConfig(k=2, ratio=0.5, rank="mean")
    check_against_reference(vlm.model, inputs, config, _prunable(inputs), blocks=vision_runs(inputs))


def test_without_mm_token_type_ids_everything_is_causal(gemma):
    inputs = gemma4_prompt(gemma, types=False)
    check_against_reference(gemma.model, inputs, fastv.FastVConfig(k=1, ratio=0.5, rank="mean"), _prunable(inputs))


def test_blocks_on_full_layers_would_be_wrong(gemma, monkeypatch):
    """Gemma 3's rule (blocks on every layer) breaks the equivalence, so the sliding-only rule is tested."""
    inputs = gemma4_prompt(gemma)
    monkeypatch.setattr(Gemma4Family, "blocks_in_layer", lambda self, layer, text_config: True)
    with pytest.raises(AssertionError, match="differs"):
        check_against_reference(
            gemma.model, inputs, fastv.FastVConfig(k=1, ratio=0.5), _prunable(inputs), blocks=vision_runs(inputs)
        )


@NEEDS_VIDEOS
def test_per_image_budget_counts_each_frame(gemma):
    inputs = gemma4_prompt(gemma, frames=2)
    blocks = vision_runs(inputs)
    config = fastv.FastVConfig(k=2, ratio=0.5, budget="per_image")
    check_against_reference(gemma.model, inputs, config, blocks >= 0, blocks=blocks, segments=blocks)


def test_padded_batch_matches_single_runs(gemma):
    singles = [gemma4_prompt(gemma, n_images=2, seed=0, before=2), gemma4_prompt(gemma, n_images=3, seed=1, before=6)]
    assert_batch_matches_singles(gemma.model, singles, gemma4_batch(singles), fastv.FastVConfig(k=2, ratio=0.5))


def test_a_padded_batch_whose_longest_row_keeps_every_image_token(gemma):
    singles = [gemma4_prompt(gemma, n_images=3, seed=0, before=2), gemma4_prompt(gemma, n_images=1, seed=1, before=60)]
    assert_full_width_batch_matches_singles(gemma.model, singles, gemma4_batch(singles))


def test_remove_restores_the_model(gemma):
    assert_remove_restores(gemma.model, gemma4_prompt(gemma, frames=FRAMES), fastv.FastVConfig(k=2, ratio=0.75))


def test_eager_attention_matches_reference():
    vlm = tiny_gemma4(attn_implementation="eager")
    inputs = gemma4_prompt(vlm, frames=FRAMES)
    config = fastv.FastVConfig(k=2, ratio=0.5)
    check_against_reference(vlm.model, inputs, config, _prunable(inputs), blocks=vision_runs(inputs))


# --- the adapter's keys against the cached ones, on a sliding and a full ranking layer -------------------


GUARD_CASES = [(1, 64), (1, 8), (2, 8), (3, 8)]
GUARD_IDS = ["sliding-whole-prompt-cached", "sliding-tail-cached", "full", "sliding-after-full"]


@pytest.mark.parametrize(("k", "window"), GUARD_CASES, ids=GUARD_IDS)
def test_guard_checks_the_adapter_keys_on_both_layer_types(k, window):
    """Layer k-1 is sliding for k = 1, 3 and full for k = 2. A sliding layer's cache keeps the whole prompt
    only when it fits the window (64); with window 8 it keeps the last 7 keys, and those are compared."""
    vlm = tiny_gemma4(sliding_window=window)
    inputs = gemma4_prompt(vlm)
    fastv.apply(vlm.model, fastv.FastVConfig(k=k, ratio=0.5))
    try:
        with torch.no_grad():
            vlm.model(**inputs, use_cache=True)
        assert vlm.model._fastv_patch.adapter_checked
    finally:
        fastv.remove(vlm.model)


@pytest.mark.parametrize(("k", "window"), GUARD_CASES, ids=GUARD_IDS)
def test_guard_refuses_wrongly_rotated_keys(k, window, monkeypatch):
    """The guard is not vacuous on either layer type: unrotated keys are refused."""
    vlm = tiny_gemma4(sliding_window=window)
    inputs = gemma4_prompt(vlm)
    monkeypatch.setattr(Gemma4Family, "rotary", lambda self, attention: lambda q, key, cos, sin: (q, key))
    fastv.apply(vlm.model, fastv.FastVConfig(k=k, ratio=0.5))
    try:
        with pytest.raises(FastVError, match=f"rebuilds layer {k - 1}'s keys"), torch.no_grad():
            vlm.model(**inputs, use_cache=True)
    finally:
        fastv.remove(vlm.model)


# --- refusals ------------------------------------------------------------------------------------------


def test_e2b_style_checkpoints_are_refused_with_the_alternative():
    vlm = tiny_gemma4(num_kv_shared_layers=2, hidden_size_per_layer_input=8)
    with pytest.raises(UnsupportedModelError) as error:
        fastv.apply(vlm.model, fastv.FastVConfig(k=1))
    message = str(error.value)
    assert "num_kv_shared_layers" in message and "hidden_size_per_layer_input" in message
    assert "gemma-4-26B-A4B or gemma-4-31B" in message
    assert not fastv.is_applied(vlm.model)


def test_all_bidirectional_attention_is_refused():
    vlm = tiny_gemma4(layers=2, use_bidirectional_attention="all")
    with pytest.raises(UnsupportedModelError, match="use_bidirectional_attention='all'"):
        fastv.apply(vlm.model, fastv.FastVConfig(k=1))


def test_gemma4_unified_is_refused_with_its_reason():
    model = torch.nn.Module()
    model.config = types.SimpleNamespace(model_type="gemma4_unified")
    with pytest.raises(UnsupportedModelError, match="image attention two ways"):
        family_for(model)
