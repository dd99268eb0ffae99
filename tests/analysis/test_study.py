"""The attention study: class shares sum to 1, and equal the numbers eager ``output_attentions`` gives."""

from __future__ import annotations

import json
import math

import pytest
import torch

from fastv.analysis import CLASSES, analyze, token_classes
from fastv.analysis.attention import pool_index
from fastv.families.llava.selfcheck import tiny_llava, tiny_llava_next
from fastv.selfcheck.tiny import IMAGE_TOKEN, prompt_ids


def _inputs(vlm, n_before=3, n_after=4, images=1, seed=0):
    ids = prompt_ids(n_before, [vlm.image_tokens] * images, n_after, seed=seed)[None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": vlm.pixel_values(images, seed)}


def _reference(model, full, classes, queries, layer_maps=()):
    """Shares and pooled maps from eager attention weights (what the paper's code reads)."""
    model.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = model(**full, output_attentions=True, use_cache=False).attentions
    one_hot = torch.nn.functional.one_hot(classes, len(CLASSES)).double()
    shares = torch.stack([a[0].double().mean(0)[queries] @ one_hot for a in attentions])
    return shares, [attentions[i][0].double().mean(0) for i in layer_maps]


@pytest.mark.parametrize("queries", ["output", "last", "all"])
def test_shares_sum_to_one_and_match_eager(queries):
    vlm = tiny_llava()  # sdpa: the study never asks the backend for weights
    inputs = _inputs(vlm)
    result = analyze(vlm.model, inputs, max_new_tokens=4, queries=queries, map_layers=(1,), map_bins=8)
    assert result.shares.shape == (4, len(result.query_positions), len(CLASSES))
    assert torch.allclose(result.shares.sum(-1), torch.ones(()).double(), atol=1e-5)
    full = dict(inputs, input_ids=torch.tensor([inputs["input_ids"][0].tolist() + result.output_ids]))
    full["attention_mask"] = torch.ones_like(full["input_ids"])
    expected, (attn_map,) = _reference(vlm.model, full, result.classes, result.query_positions, (1,))
    assert torch.allclose(result.shares, expected, atol=1e-5)
    n = attn_map.shape[0]
    index = pool_index(n, 8)
    one_hot = torch.nn.functional.one_hot(index, 8).double()
    pooled = one_hot.T @ attn_map @ one_hot / torch.outer(one_hot.sum(0), one_hot.sum(0))
    assert torch.allclose(result.maps[1], pooled, atol=1e-6)


def test_allocation_and_efficiency_definitions():
    vlm = tiny_llava(attn_implementation="eager")
    result = analyze(vlm.model, _inputs(vlm, images=2), max_new_tokens=3)
    counts = result.counts
    assert counts.tolist() == [3, 32, 1 + 1 + 4, len(result.output_ids)]  # a text token follows each image
    assert torch.allclose(result.allocation, result.shares.mean(1))
    assert torch.allclose(result.efficiency, result.allocation / counts)
    assert torch.allclose(result.allocation.sum(-1), torch.ones(4).double(), atol=1e-5)


def test_llava_next_with_unpadding_matches_eager():
    from fastv.families.llava.selfcheck import llava_next_image

    vlm = tiny_llava_next()
    tiles, count = llava_next_image(vlm, (20, 44))
    ids = prompt_ids(2, [count], 3)[None]
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": tiles[None],
        "image_sizes": torch.tensor([[20, 44]]),
    }
    result = analyze(vlm.model, inputs, max_new_tokens=2)
    full = dict(inputs, input_ids=torch.tensor([ids[0].tolist() + result.output_ids]))
    full["attention_mask"] = torch.ones_like(full["input_ids"])
    expected, _ = _reference(vlm.model, full, result.classes, result.query_positions)
    assert torch.allclose(result.shares, expected, atol=1e-5)


def test_token_classes():
    prunable = torch.tensor([0, 0, 1, 1, 0, 1, 0, 0, 0], dtype=torch.bool)
    assert token_classes(prunable, 7).tolist() == [0, 0, 1, 1, 2, 1, 2, 3, 3]
    with pytest.raises(Exception, match="no image"):
        token_classes(torch.zeros(4, dtype=torch.bool), 4)


def test_output_queries_need_generated_tokens():
    vlm = tiny_llava(layers=2)
    with pytest.raises(Exception, match="needs generated tokens"):
        analyze(vlm.model, _inputs(vlm), max_new_tokens=0)
    assert analyze(vlm.model, _inputs(vlm), max_new_tokens=0, queries="last").shares.shape == (2, 1, 4)


def test_image_token_is_the_image_class():
    vlm = tiny_llava(layers=2)
    result = analyze(vlm.model, _inputs(vlm), max_new_tokens=0, queries="last")
    ids = _inputs(vlm)["input_ids"][0]
    assert (result.classes[ids == IMAGE_TOKEN] == CLASSES.index("image")).all()


def test_query_blocks_do_not_change_the_numbers():
    vlm = tiny_llava(layers=2)
    whole = analyze(vlm.model, _inputs(vlm), max_new_tokens=3, queries="all", map_layers=(0,), map_bins=5)
    rows = analyze(vlm.model, _inputs(vlm), max_new_tokens=3, queries="all", map_layers=(0,), map_bins=5, block_bytes=1)
    assert torch.allclose(whole.shares, rows.shares, atol=1e-6)
    assert torch.allclose(whole.maps[0], rows.maps[0], atol=1e-8)


def test_qwen2_vl_image_and_video_match_eager():
    from fastv.families.qwen_vl.selfcheck import tiny_qwen2_vl
    from fastv.selfcheck.tiny import VIDEO_TOKEN, mm_prompt

    vlm = tiny_qwen2_vl(layers=2)
    image, image_grid, n_image = vlm.visual((1, 4, 6))
    video, video_grid, n_video = vlm.visual((2, 4, 4), seed=1)
    ids, types = mm_prompt(3, [(IMAGE_TOKEN, n_image), (VIDEO_TOKEN, n_video)], 4)
    inputs = {
        "input_ids": ids[None],
        "attention_mask": torch.ones(1, ids.numel(), dtype=torch.long),
        "mm_token_type_ids": types[None],
        "pixel_values": image,
        "image_grid_thw": image_grid,
        "pixel_values_videos": video,
        "video_grid_thw": video_grid,
    }
    result = analyze(vlm.model, inputs, max_new_tokens=3)
    assert result.counts[CLASSES.index("image")] == n_image + n_video
    full = dict(inputs, input_ids=torch.tensor([ids.tolist() + result.output_ids]))
    n = full["input_ids"].shape[1]
    full["attention_mask"] = torch.ones(1, n, dtype=torch.long)
    full["mm_token_type_ids"] = torch.cat([types, torch.zeros(n - ids.numel(), dtype=torch.long)])[None]
    expected, _ = _reference(vlm.model, full, result.classes, result.query_positions)
    assert torch.allclose(result.shares, expected, atol=1e-5)


def test_gemma3_bidirectional_image_block_matches_eager():
    from fastv.families.gemma3.selfcheck import tiny_gemma3

    vlm = tiny_gemma3(layers=2)
    ids = prompt_ids(3, [vlm.image_tokens], 4)[None]
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "token_type_ids": (ids == IMAGE_TOKEN).long(),
        "pixel_values": vlm.pixel_values(1),
    }
    result = analyze(vlm.model, inputs, max_new_tokens=2, queries="all")
    n = ids.shape[1] + len(result.output_ids)
    full = dict(inputs, input_ids=torch.tensor([ids[0].tolist() + result.output_ids]))
    full["attention_mask"] = torch.ones(1, n, dtype=torch.long)
    full["token_type_ids"] = torch.cat([inputs["token_type_ids"][0], torch.zeros(n - ids.shape[1], dtype=torch.long)])[
        None
    ]
    expected, _ = _reference(vlm.model, full, result.classes, result.query_positions)
    assert torch.allclose(result.shares, expected, atol=1e-5)


def test_hybrid_decoder_recurrent_layers_have_no_attention_and_attention_layers_match_eager():
    """Qwen3.5: Gated DeltaNet layers have no attention map (NaN rows, a map there is refused); the
    gated full-attention layers equal eager ``output_attentions``, which returns only those."""
    from fastv.analysis.study import _extend
    from fastv.families.qwen3_5.selfcheck import tiny_qwen3_5
    from fastv.selfcheck.prompts import qwen3_prompt

    vlm = tiny_qwen3_5()
    inputs = qwen3_prompt(vlm, video_grid=None)
    result = analyze(vlm.model, inputs, max_new_tokens=2, queries="all", map_layers=(3,), map_bins=4)
    types = vlm.model.config.text_config.layer_types
    recurrent = [i for i, t in enumerate(types) if t == "linear_attention"]
    attending = [i for i, t in enumerate(types) if t == "full_attention"]
    assert recurrent == [0, 2] and attending == [1, 3]
    assert torch.isnan(result.shares[recurrent]).all()
    full = _extend(inputs, torch.tensor([inputs["input_ids"][0].tolist() + result.output_ids]))
    expected, _ = _reference(vlm.model, full, result.classes, result.query_positions)
    assert torch.allclose(result.shares[attending], expected, atol=1e-5)
    assert result.maps[3].shape == (4, 4)
    with pytest.raises(
        ValueError, match=r"map layers \[2\] are recurrent \('linear_attention'\).*attention layers are \[1, 3\]"
    ):
        analyze(vlm.model, inputs, max_new_tokens=0, queries="all", map_layers=(2,))


def test_hybrid_study_report_and_plots_skip_recurrent_layers(tmp_path):
    from fastv.analysis.plots import plot_allocation, plot_efficiency
    from fastv.analysis.report import StudyReport
    from fastv.families.qwen3_5.selfcheck import tiny_qwen3_5
    from fastv.selfcheck.prompts import qwen3_prompt

    vlm = tiny_qwen3_5()
    report = StudyReport([analyze(vlm.model, qwen3_prompt(vlm, video_grid=None), max_new_tokens=2)], {})
    assert [math.isnan(row["alloc_image"]) for row in report.summary()] == [True, False, True, False]
    json.dumps(report.to_dict(), allow_nan=False)  # the CLI's JSON: recurrent layers are nulls
    assert plot_allocation(report, tmp_path / "a.png").stat().st_size > 0
    assert plot_efficiency(report, tmp_path / "e.png").stat().st_size > 0
