"""Molmo2 on Qwen3 (per-head q/k norms) and on OLMo (q/k norms over the whole projection, post-norm layers,
scaled RoPE on some layers only): pooled patches added onto <im_patch> placeholders between text markers
(view starts, <im_col>, <im_end>, frame markers), and one bidirectional block over every image-type token of
the prompt. Images or a video per prompt (transformers' Molmo2 takes one kind at a time): the equivalence
suite on each variant."""

from __future__ import annotations

import pytest
import torch

import fastv
from fastv.families import supported_families
from fastv.families.molmo2.selfcheck import MOLMO2_COLUMN, MOLMO2_MARKERS, molmo2_batch, molmo2_prompt, tiny_molmo2
from fastv.selfcheck.reference import decoder_inputs, language_model, reference_logits
from fastv.selfcheck.tiny import IMAGE_TOKEN
from tests.families.equivalence import (
    TOLERANCE,
    assert_adapter_queries_are_the_models,
    assert_batch_matches_singles,
    assert_full_width_batch_matches_singles,
    assert_ratio_zero_identical,
    assert_remove_restores,
    check_against_reference,
    prefill_with_fastv,
)
from tests.families.rankers import check_every_ranker

MISSING = supported_families()["molmo2"].unavailable_reason()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))

VARIANTS = ["molmo2", "molmo2_o"]
IMAGES = (((2, 2), (2, 3)), ((2, 1), (1, 2)))  # two images: (low-res rows, cols), (high-res rows, cols)
VIDEO = (3, 2, 2)  # frames, rows, cols


@pytest.fixture(scope="module", params=VARIANTS)
def molmo(request):
    return tiny_molmo2(variant=request.param)


def _images(vlm, seed: int = 0) -> dict:
    return molmo2_prompt(vlm, IMAGES, seed=seed)


def _video(vlm, seed: int = 0) -> dict:
    return molmo2_prompt(vlm, (), VIDEO, seed=seed)


def _prunable(inputs: dict) -> torch.Tensor:
    return inputs["input_ids"][0] == IMAGE_TOKEN


def _blocks(_vlm, inputs: dict) -> torch.Tensor:
    """Molmo2's prefill block, by hand: every token the processor types as image (1) is in block 0."""
    return torch.where(inputs["mm_token_type_ids"][0] == 1, 0, -1)


def _views(inputs: dict) -> torch.Tensor:
    """(n,) per-view / per-frame segment of each patch, by hand: patches after the k-th start marker are view k."""
    ids = inputs["input_ids"][0]
    starts = [MOLMO2_MARKERS[key] for key in MOLMO2_MARKERS if key.endswith("start_token_id")]
    view = torch.cumsum(torch.isin(ids, torch.tensor(starts)).long(), 0) - 1
    return torch.where(ids == IMAGE_TOKEN, view, torch.tensor(-1))


def test_tiny_models_differ_where_the_checkpoints_do(molmo):
    lm = language_model(molmo.model)
    attention = lm.layers[0].self_attn
    if lm.config.qk_norm_type == "olmo":  # norms over all heads at once, post-norm, two rotary tables
        assert attention.k_norm.weight.numel() == attention.k_proj.out_features
        assert lm.config.norm_after and lm.rope_types == ["unscaled", "scaled"] * 2
        positions = torch.arange(8)[None]
        embeds = torch.zeros(1, 8, lm.config.hidden_size)
        assert not torch.allclose(lm.rotary_emb(embeds, positions)[0], lm.rotary_emb_unscaled(embeds, positions)[0])
    else:
        assert attention.k_norm.weight.numel() == attention.head_dim
    assert molmo.model.config.image_token_id == molmo.model.config.video_token_id == IMAGE_TOKEN


@pytest.mark.parametrize("prompt", [_images, _video])
def test_ratio_zero_is_identical_to_unpatched_model(molmo, prompt):
    assert_ratio_zero_identical(molmo.model, prompt(molmo))


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_ranker_and_backend_over_8_decode_steps(variant):
    def build(backend):
        return tiny_molmo2(backend, variant=variant)

    check_every_ranker(build, _images, _prunable, blocks=_blocks)


@pytest.mark.parametrize(("k", "rank"), [(1, "mean"), (2, "last_token"), (2, "random"), (3, "mean")])
def test_video_matches_the_reference(molmo, k, rank):
    inputs = _video(molmo)
    config = fastv.FastVConfig(k=k, ratio=0.5, rank=rank)
    check_against_reference(molmo.model, inputs, config, _prunable(inputs), blocks=_blocks(molmo, inputs), steps=8)


def test_the_image_block_matters(molmo):
    """FastV equals the reference with Molmo2's bidirectional block and differs from a causal one, so the
    checks above cannot pass vacuously."""
    inputs = _images(molmo)
    embeds, _ = decoder_inputs(molmo.model, **inputs)
    out, kept = prefill_with_fastv(molmo.model, inputs, fastv.FastVConfig(k=2, ratio=0.5, rank="mean"))
    with_block = reference_logits(molmo.model, embeds, kept, 2, blocks=_blocks(molmo, inputs))
    causal = reference_logits(molmo.model, embeds, kept, 2)
    assert (out.logits - with_block).abs().max() < TOLERANCE < (out.logits - causal).abs().max()


@pytest.mark.parametrize("prompt", [_images, _video])
def test_per_view_and_per_frame_budget(molmo, prompt):
    """budget="per_image": each image view (rows of patches between <im_col> tokens) and each video frame is
    one segment, not each row."""
    inputs = prompt(molmo)
    segments = _views(inputs)
    assert int(segments.max()) == (3 if prompt is _images else VIDEO[0] - 1)  # 2 views per image; frames
    config = fastv.FastVConfig(k=2, ratio=0.75, budget="per_image")
    blocks = _blocks(molmo, inputs)
    check_against_reference(molmo.model, inputs, config, _prunable(inputs), blocks=blocks, segments=segments)


def test_markers_and_columns_are_never_dropped(molmo):
    """View / frame markers and <im_col> are text (image-typed for the block, not image features): pruned to
    one patch, they all stay."""
    for inputs in (_images(molmo), _video(molmo)):
        ids = inputs["input_ids"][0]
        markers = torch.isin(ids, torch.tensor([MOLMO2_COLUMN, *MOLMO2_MARKERS.values()]))
        _, kept = prefill_with_fastv(molmo.model, inputs, fastv.FastVConfig(k=2, keep=1))
        assert set(markers.nonzero().squeeze(1).tolist()) <= set(kept.tolist())
        assert kept.numel() == ids.numel() - int(_prunable(inputs).sum()) + 1


def test_adapter_queries_are_the_models(molmo, monkeypatch):
    """The ranking queries equal the ones the layer attends with (its kind of q norm, then the rotary); the
    keys are checked at every first prefill by FastV itself."""
    attention = language_model(molmo.model).layers[1].self_attn
    assert_adapter_queries_are_the_models(molmo.model, attention, _images(molmo), monkeypatch)


def test_padded_batch_of_different_image_sizes_and_counts_matches_single_runs(molmo):
    singles = [
        molmo2_prompt(molmo, (((2, 2), (2, 3)),), seed=1, before=2),
        molmo2_prompt(molmo, (((1, 2), (3, 2)), ((2, 2), (1, 1))), seed=2, before=5),
    ]
    for rank in ("last_token", "mean"):
        config = fastv.FastVConfig(k=2, ratio=0.5, rank=rank)
        assert_batch_matches_singles(molmo.model, singles, molmo2_batch(singles), config, steps=6)


def test_a_padded_batch_whose_longest_row_keeps_every_image_token(molmo):
    singles = [
        molmo2_prompt(molmo, (((1, 2), (3, 2)), ((2, 2), (1, 1))), seed=2, before=2),
        molmo2_prompt(molmo, (((2, 2), (2, 3)),), seed=1, before=60),
    ]
    assert_full_width_batch_matches_singles(molmo.model, singles, molmo2_batch(singles))


def test_remove_restores_the_model(molmo):
    assert_remove_restores(molmo.model, _images(molmo), fastv.FastVConfig(k=2, ratio=0.75))
