"""HunYuan-VL (HunyuanOCR): 4-axis XD-RoPE (position, width, height, image index), queries and keys rotated
*before* their per-head RMS norms, and the patch merger's begin / newline / end rows inside each image's
placeholders (between the <img_start> / <img_end> text tokens): the equivalence suite."""

from __future__ import annotations

import pytest
import torch

import fastv
from fastv.errors import FastVError
from fastv.families import Family, family_for
from fastv.families.hunyuan_vl.selfcheck import (
    HUNYUAN_IMAGE_END,
    HUNYUAN_IMAGE_START,
    hunyuan_positions,
    hunyuan_vl_batch,
    hunyuan_vl_prompt,
    tiny_hunyuan_vl,
)
from fastv.selfcheck.prompts import image_runs
from fastv.selfcheck.reference import decoder_inputs, language_model, reference_logits
from fastv.selfcheck.tiny import IMAGE_TOKEN
from tests.families.equivalence import (
    TOLERANCE,
    assert_batch_matches_singles,
    assert_full_width_batch_matches_singles,
    assert_ratio_zero_identical,
    assert_remove_restores,
    check_against_reference,
    prefill_with_fastv,
)
from tests.families.rankers import check_every_ranker

GRIDS = ((4, 6), (4, 4))  # two images of different sizes, in (h, w) patches


@pytest.fixture(scope="module")
def hunyuan():
    return tiny_hunyuan_vl()


def _prompt(vlm, seed: int = 0) -> dict:
    return hunyuan_vl_prompt(vlm, GRIDS, seed=seed)


def _prunable(inputs: dict) -> torch.Tensor:
    return inputs["input_ids"][0] == IMAGE_TOKEN


def test_tiny_model_has_xd_rope_and_norms_after_the_rotary(hunyuan):
    lm = language_model(hunyuan.model)
    assert lm.config.rope_parameters["mrope_section"] == [2, 2, 2, 2]
    attention = lm.layers[0].self_attn
    assert hasattr(attention, "query_layernorm") and hasattr(attention, "key_layernorm")
    # each image: begin row, (h/2) merged rows of (w/2 + 1) tokens (a newline closes each row), end row
    assert int(_prunable(_prompt(hunyuan)).sum()) == (2 * 4 + 2) + (2 * 3 + 2)


def test_ratio_zero_is_identical_to_unpatched_model(hunyuan):
    assert_ratio_zero_identical(hunyuan.model, _prompt(hunyuan))


def test_every_ranker_and_backend_over_8_decode_steps():
    check_every_ranker(tiny_hunyuan_vl, _prompt, _prunable, positions=hunyuan_positions)


@pytest.mark.parametrize(("k", "rank"), [(1, "mean"), (3, "last_token")])
def test_other_layers_match_the_reference(hunyuan, k, rank):
    inputs = _prompt(hunyuan)
    config = fastv.FastVConfig(k=k, ratio=0.5, rank=rank)
    check_against_reference(hunyuan.model, inputs, config, _prunable(inputs), hunyuan_positions(hunyuan, inputs))


def test_xd_rope_positions_matter(hunyuan):
    """The pruned layers' kept tokens keep their XD-RoPE positions: 1-D positions give different logits,
    so the reference checks cannot pass vacuously."""
    inputs = _prompt(hunyuan)
    n = inputs["input_ids"].shape[1]
    embeds, _ = decoder_inputs(hunyuan.model, **inputs)
    out, kept = prefill_with_fastv(hunyuan.model, inputs, fastv.FastVConfig(k=2, ratio=0.5))
    right = reference_logits(hunyuan.model, embeds, kept, 2, hunyuan_positions(hunyuan, inputs)(n))
    axes = len(language_model(hunyuan.model).config.rope_parameters["mrope_section"])
    # one sequence index on every axis, as (axes, 1, n): 5.16's rotary takes no (1, n) ids for XD-RoPE
    flat = reference_logits(hunyuan.model, embeds, kept, 2, torch.arange(n).expand(axes, 1, n))
    assert (out.logits - right).abs().max() < TOLERANCE < (out.logits - flat).abs().max()


def test_adapter_queries_are_the_models(hunyuan):
    """The ranking queries equal the ones the layer attends with (rotated, then normed); the keys are
    checked at every first prefill by FastV itself."""
    attention = language_model(hunyuan.model).layers[1].self_attn
    seen = {}

    def record_inputs(_module, _args, kwargs):
        seen.setdefault("inputs", (kwargs["hidden_states"], kwargs["position_embeddings"]))

    def record_queries(_module, _args, output):
        seen.setdefault("queries", output)

    handles = [
        attention.register_forward_pre_hook(record_inputs, with_kwargs=True),
        attention.query_layernorm.register_forward_hook(record_queries),
    ]
    try:
        with torch.no_grad():
            hunyuan.model(**_prompt(hunyuan))
    finally:
        for handle in handles:
            handle.remove()
    hidden, position_embeddings = seen["inputs"]
    with torch.no_grad():
        queries = family_for(hunyuan.model).queries(attention, hidden, position_embeddings)
    torch.testing.assert_close(queries, seen["queries"], rtol=0, atol=1e-6)


def test_an_adapter_that_normalises_before_rotating_is_refused(hunyuan, monkeypatch):
    """The usual order (norm, then rotary: Qwen3, Gemma) rebuilds other keys: the first prefill refuses it."""
    family = family_for(hunyuan.model)

    def norm_then_rotate(attention, hidden, position_embeddings):
        keys = Family._project(family, attention, hidden, "k_proj", "key_layernorm")
        return family.rotary(attention)(keys, keys, *position_embeddings)[1]

    monkeypatch.setattr(family, "keys", norm_then_rotate)
    with pytest.raises(FastVError, match="'hunyuan_vl' adapter rebuilds layer 1's keys differently"):
        prefill_with_fastv(hunyuan.model, _prompt(hunyuan), fastv.FastVConfig(k=2, ratio=0.5))
    assert not fastv.is_applied(hunyuan.model)


def test_image_markers_are_never_dropped(hunyuan):
    """<img_start> / <img_end> are text tokens: pruned to one image token, they all stay."""
    inputs = _prompt(hunyuan)
    ids = inputs["input_ids"][0]
    markers = torch.isin(ids, torch.tensor([HUNYUAN_IMAGE_START, HUNYUAN_IMAGE_END]))
    assert int(markers.sum()) == 2 * len(GRIDS)
    _, kept = prefill_with_fastv(hunyuan.model, inputs, fastv.FastVConfig(k=2, keep=1))
    assert set(markers.nonzero().squeeze(1).tolist()) <= set(kept.tolist())
    assert kept.numel() == ids.numel() - int(_prunable(inputs).sum()) + 1


def test_per_image_budget(hunyuan):
    """budget="per_image": each image's placeholders are one run, ranked on their own."""
    inputs = _prompt(hunyuan)
    segments = image_runs(inputs)
    assert int(segments.max()) == 1
    config = fastv.FastVConfig(k=2, ratio=0.75, budget="per_image")
    positions = hunyuan_positions(hunyuan, inputs)
    check_against_reference(hunyuan.model, inputs, config, _prunable(inputs), positions, segments=segments)


def test_padded_batch_of_different_image_sizes_and_counts_matches_single_runs(hunyuan):
    singles = [
        hunyuan_vl_prompt(hunyuan, ((4, 6),), seed=1, before=2),
        hunyuan_vl_prompt(hunyuan, ((8, 4), (4, 4)), seed=2, before=6),
    ]
    for rank in ("last_token", "random"):
        config = fastv.FastVConfig(k=2, ratio=0.5, rank=rank)
        assert_batch_matches_singles(hunyuan.model, singles, hunyuan_vl_batch(hunyuan, singles), config, steps=6)


def test_a_padded_batch_whose_longest_row_keeps_every_image_token(hunyuan):
    singles = [
        hunyuan_vl_prompt(hunyuan, ((8, 4), (4, 4)), seed=1, before=2),
        hunyuan_vl_prompt(hunyuan, ((4, 6),), seed=2, before=60),
    ]
    assert_full_width_batch_matches_singles(hunyuan.model, singles, hunyuan_vl_batch(hunyuan, singles))


def test_remove_restores_the_model(hunyuan):
    assert_remove_restores(hunyuan.model, _prompt(hunyuan), fastv.FastVConfig(k=2, ratio=0.75))
