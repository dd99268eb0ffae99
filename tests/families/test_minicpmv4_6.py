"""MiniCPM-V 4.6: Qwen3.5's hybrid text decoder (Gated DeltaNet linear-attention layers between gated
full-attention layers) with plain 1-D positions, behind a NaViT vision tower; images, slices and video
frames are each one run of tokens.

The hybrid core (pruned linear-attention layers run on the kept tokens only) is shown to be necessary in
tests/families/test_qwen3_5.py, on the same decoder code; here the reference equality covers it.
"""

from __future__ import annotations

import pytest
import torch

import fastv
from fastv.compat import minicpmv4_6_packs_mixed_sizes
from fastv.errors import FastVError, UnsupportedModelError
from fastv.families.minicpmv4_6.selfcheck import minicpmv_batch, minicpmv_prompt, tiny_minicpmv4_6
from fastv.selfcheck.prompts import image_runs
from fastv.selfcheck.reference import language_model
from fastv.selfcheck.tiny import IMAGE_TOKEN, VIDEO_TOKEN
from tests.families.equivalence import (
    assert_batch_matches_singles,
    assert_full_width_batch_matches_singles,
    assert_ratio_zero_identical,
    assert_remove_restores,
    check_against_reference,
)
from tests.families.rankers import check_every_ranker


@pytest.fixture(scope="module")
def minicpmv():
    return tiny_minicpmv4_6()


def _prunable(inputs: dict) -> torch.Tensor:
    return torch.isin(inputs["input_ids"][0], torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN]))


def _image_and_video(vlm) -> dict:
    return minicpmv_prompt(vlm, frames=3)


def test_tiny_model_is_hybrid_qwen3_5_text(minicpmv):
    lm = language_model(minicpmv.model)
    assert lm.config.model_type == "qwen3_5_text"
    assert lm.config.layer_types == ["linear_attention", "full_attention"] * 2
    assert hasattr(lm.layers[0], "linear_attn") and hasattr(lm.layers[1], "self_attn")


def test_ratio_zero_is_identical_to_unpatched_model(minicpmv):
    assert_ratio_zero_identical(minicpmv.model, _image_and_video(minicpmv))


def test_image_and_video_every_ranker_on_sdpa_and_eager_matches_the_reference():
    """Prefill and 8 cached decode steps equal the reference; kept sets equal eager attention maps'."""
    diffs = check_every_ranker(tiny_minicpmv4_6, _image_and_video, _prunable)
    assert len(diffs) == 6


def test_deeper_k_ranks_with_a_later_full_attention_layer():
    """Six layers, k=4: full layer 3 ranks, linear layer 4 and full layer 5 are pruned."""
    vlm = tiny_minicpmv4_6(layers=6)
    inputs = minicpmv_prompt(vlm, sizes=((8, 8),), frames=2)
    check_against_reference(vlm.model, inputs, fastv.FastVConfig(k=4, ratio=0.75), _prunable(inputs), steps=8)


def test_per_frame_budget(minicpmv):
    """budget="per_image": each image and each video frame (its own run of tokens) keeps the same share."""
    inputs = _image_and_video(minicpmv)
    ids = inputs["input_ids"][0]
    segments = image_runs({"input_ids": torch.where(ids == VIDEO_TOKEN, IMAGE_TOKEN, ids)[None]})
    assert int(segments.max()) == 4  # two images and 3 frames
    config = fastv.FastVConfig(k=2, ratio=0.75, budget="per_image")
    check_against_reference(minicpmv.model, inputs, config, _prunable(inputs), segments=segments)


def test_padded_batch_of_different_sizes_matches_single_runs(minicpmv):
    """Samples keep different counts, so the pruned batch is re-padded: linear layers need its padding mask."""
    sizes = [((8, 8), (8, 16)), ((16, 8),), ((4, 8), (8, 4), (8, 8))]
    singles = [minicpmv_prompt(minicpmv, size, seed=i, before=2 + 3 * i) for i, size in enumerate(sizes)]
    for rank in ("last_token", "random"):
        config = fastv.FastVConfig(k=2, ratio=0.5, rank=rank)
        assert_batch_matches_singles(minicpmv.model, singles, minicpmv_batch(singles), config, steps=6)


def test_a_padded_batch_whose_longest_row_keeps_every_image_token(minicpmv):
    """Linear layers get the re-packed batch's padding mask also when it is exactly as wide as the full one."""
    singles = [
        minicpmv_prompt(minicpmv, ((8, 8), (8, 16)), seed=0, before=2),
        minicpmv_prompt(minicpmv, ((4, 8),), seed=1, before=60),
    ]
    assert_full_width_batch_matches_singles(minicpmv.model, singles, minicpmv_batch(singles), ks=(2,))


def test_a_pack_of_mixed_sizes_matches_the_reference_or_is_refused(minicpmv):
    """8x16 and 16x8 patches: equal counts, so a release whose window merger reads every image with the first
    one's grid (up to 5.18) encodes the second wrongly without an error; FastV refuses it there, names the fix."""
    inputs = minicpmv_prompt(minicpmv, sizes=((8, 16), (16, 8)), packable=False)
    config = fastv.FastVConfig(k=2, ratio=0.75)
    if minicpmv4_6_packs_mixed_sizes():
        check_against_reference(minicpmv.model, inputs, config, _prunable(inputs))
        return
    minicpmv.model(**inputs)  # the stock model runs: the misread is silent
    fastv.apply(minicpmv.model, config)
    try:
        with pytest.raises(FastVError, match=r"target_sizes \[\[8, 16\], \[16, 8\]\].* Upgrade transformers"):
            minicpmv.model(**inputs)
    finally:
        fastv.remove(minicpmv.model)


def test_remove_restores_the_model(minicpmv):
    assert_remove_restores(minicpmv.model, _image_and_video(minicpmv), fastv.FastVConfig(k=2, ratio=0.75))


@pytest.mark.parametrize("k", [1, 3])
def test_a_linear_attention_ranking_layer_is_refused_naming_valid_k(minicpmv, k):
    with pytest.raises(FastVError, match=rf"k={k} .* 'linear_attention' layer.* valid k values are \[2\]"):
        fastv.apply(minicpmv.model, fastv.FastVConfig(k=k))
    assert not fastv.is_applied(minicpmv.model)


def test_a_decoder_without_qwen3_5_gated_queries_is_refused():
    """The adapter splits Qwen3.5's [query | gate] q_proj: another text decoder would be ranked with wrong queries."""
    from transformers import MiniCPMV4_6Config, MiniCPMV4_6ForConditionalGeneration

    config = tiny_minicpmv4_6().model.config.to_dict()
    text = {key: config["text_config"][key] for key in ("vocab_size", "hidden_size", "intermediate_size", "head_dim")}
    config["text_config"] = {**text, "model_type": "qwen3", "num_hidden_layers": 2, "num_attention_heads": 4}
    model = MiniCPMV4_6ForConditionalGeneration(MiniCPMV4_6Config(**config))
    with pytest.raises(UnsupportedModelError, match=r"'qwen3' text decoder.* gated query projection"):
        fastv.apply(model, fastv.FastVConfig(k=1))
    assert not fastv.is_applied(model)
