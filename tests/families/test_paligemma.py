"""PaliGemma (Gemma decoder) and PaliGemma 2 (Gemma 2: sliding layers, soft-capping; eager only): images
and prompt form one bidirectional prefix at 1-based positions. The equivalence suite, every ranker, and
the refusals (no token_type_ids; a prefix longer than the sliding window)."""

from __future__ import annotations

from functools import partial

import pytest
import torch

import fastv
from fastv import FastVError
from fastv.families.paligemma.selfcheck import one_based_positions, paligemma_prompt, tiny_paligemma
from fastv.selfcheck.tiny import IMAGE_TOKEN, left_pad
from tests.families.equivalence import (
    assert_batch_matches_singles,
    assert_full_width_batch_matches_singles,
    assert_ratio_zero_identical,
    assert_remove_restores,
    check_against_reference,
)
from tests.families.rankers import check_every_ranker

# (build, backends): PaliGemma 2's Gemma 2 decoder has no SDPA in transformers (logit soft-capping)
VARIANTS = {
    "paligemma": (tiny_paligemma, ("sdpa", "eager")),
    "paligemma2": (partial(tiny_paligemma, gemma2=True), ("eager",)),
}


def _prunable(inputs: dict) -> torch.Tensor:
    return inputs["input_ids"][0] == IMAGE_TOKEN


def _prefix(inputs: dict) -> torch.Tensor:
    """(n,) the whole prompt is block 0 (token_type_ids are all 0), written out by hand."""
    return torch.zeros(inputs["input_ids"].shape[1], dtype=torch.long)


def _images(inputs: dict) -> torch.Tensor:
    """(n,) image i owns the i-th 16 image tokens (the images' tokens form one run)."""
    image = _prunable(inputs)
    segments = torch.full(image.shape, -1)
    segments[image] = torch.arange(int(image.sum())) // 16
    return segments


def _check(vlm, inputs: dict, config: fastv.FastVConfig, **extra) -> tuple[float, float]:
    return check_against_reference(
        vlm.model, inputs, config, _prunable(inputs), one_based_positions, _prefix(inputs), **extra
    )


def test_the_prefix_is_bidirectional_in_the_model():
    """The first image token attends to the last prompt token (eager maps): the mask FastV reproduces."""
    vlm = tiny_paligemma("eager")
    with torch.no_grad():
        maps = vlm.model(**paligemma_prompt(vlm), output_attentions=True).attentions
    assert float(maps[0][0, :, 0, -1].min()) > 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_equivalence_suite(variant):
    build, backends = VARIANTS[variant]
    for backend in backends:
        vlm = build(backend)
        inputs = paligemma_prompt(vlm, n_images=2)
        assert_ratio_zero_identical(vlm.model, inputs)
        for k, rank in [(1, "mean"), (2, "last_token"), (3, "mean"), (3, "last_token")]:
            _check(vlm, inputs, fastv.FastVConfig(k=k, ratio=0.5, rank=rank))
        _check(vlm, inputs, fastv.FastVConfig(k=2, ratio=0.75, budget="per_image"), segments=_images(inputs))
        singles = [paligemma_prompt(vlm, 1, 1, 2), paligemma_prompt(vlm, 2, 2, 6)]
        batch = _batch(singles)
        for config in (fastv.FastVConfig(k=2, ratio=0.5), fastv.FastVConfig(k=2, ratio=0.5, budget="per_image")):
            assert_batch_matches_singles(vlm.model, singles, batch, config)
        singles = [paligemma_prompt(vlm, 2, 1, 2), paligemma_prompt(vlm, 1, 2, 2 + vlm.image_tokens + 3)]
        assert_full_width_batch_matches_singles(vlm.model, singles, _batch(singles))
        assert_remove_restores(vlm.model, inputs, fastv.FastVConfig(k=2, ratio=0.75))


def _batch(singles: list[dict]) -> dict:
    ids, mask = left_pad([s["input_ids"][0] for s in singles])
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": torch.zeros_like(ids),  # the processor pads types with 0 too
        "pixel_values": torch.cat([s["pixel_values"] for s in singles]),
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_ranker_over_8_decode_steps(variant):
    build, backends = VARIANTS[variant]
    check_every_ranker(
        build,
        partial(paligemma_prompt, n_images=2),
        _prunable,
        backends=backends,
        positions=lambda vlm, inputs: one_based_positions,
        blocks=lambda vlm, inputs: _prefix(inputs),
    )


def test_without_token_type_ids_is_refused():
    vlm = tiny_paligemma()
    fastv.apply(vlm.model, fastv.FastVConfig(k=2, ratio=0.5))
    try:
        with pytest.raises(FastVError, match="needs PaliGemma's `token_type_ids`"), torch.no_grad():
            vlm.model(**paligemma_prompt(vlm, types=False))
    finally:
        fastv.remove(vlm.model)


def test_a_prefix_longer_than_the_sliding_window_is_refused():
    """On sliding layers the model lets the prefix block override the window (a query 24 tokens on still
    sees the first token through a window of 16): FastV does not model that, so it refuses."""
    vlm = tiny_paligemma("eager", gemma2=True, sliding_window=16)
    inputs = paligemma_prompt(vlm)
    assert vlm.model.config.text_config.layer_types[0] == "sliding_attention"
    with torch.no_grad():
        maps = vlm.model(**inputs, output_attentions=True).attentions
    assert float(maps[0][0, :, -1, 0].min()) > 0  # 24 > 16 positions back, inside the prefix
    fastv.apply(vlm.model, fastv.FastVConfig(k=2, ratio=0.5))
    try:
        message = r"prefix \(25 tokens\) is longer than the decoder's sliding window"
        with pytest.raises(FastVError, match=message), torch.no_grad():
            vlm.model(**inputs)
    finally:
        fastv.remove(vlm.model)
