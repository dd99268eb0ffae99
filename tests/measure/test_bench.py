"""Benchmark smoke tests at a tiny size: files written, KV cache equals the formula, CLI exits 0.

No timing is asserted: timings are what the benchmark reports, not what tests check.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json

import pytest
import torch

from fastv.compat import output_cache
from fastv.config import FastVConfig
from fastv.measure import get_preset
from fastv.measure.bench import bench, settings_from_strings
from fastv.measure.kvcache import cache_bytes, cache_lengths
from fastv.measure.memory import PeakMemory
from fastv.measure.workload import preset_workload

TINY = {"scale": 32, "layers": 3, "repeats": 1, "warmup": 1, "decode_steps": 2, "short_tokens": 2, "long_tokens": 3}


@pytest.fixture(scope="module")
def result():
    return bench("llava-1.5-7b", [(2, 0.5), (1, 0.75)], batch_size=2, **TINY)


def test_kv_cache_bytes_equal_the_formula(result):
    for variant in result.variants:
        assert variant.kv_bytes_measured == variant.kv_bytes_formula > 0
    base, fast = result.variants[0], result.variants[1]
    assert base.kv_lengths == [651] * 3
    assert fast.kv_lengths == [651, 651, 651 - 288]
    assert result.variants[2].kv_lengths == [651, 651 - 432, 651 - 432]


def test_every_metric_is_recorded(result):
    data = result.to_dict()
    assert [v["label"] for v in data["variants"]] == ["baseline", "K2 R50", "K1 R75"]
    for v in data["variants"]:
        for key in ("prefill_s_median", "decode_token_s_median", "gen_short_s_median", "gen_long_s_median"):
            assert v[key] > 0
        assert v["predicted_prefill_speedup_flops"] >= 1.0
    assert data["variants"][1]["rank_share_of_prefill"] > 0
    json.dumps(data)  # serialisable


def test_plot_is_written(result, tmp_path):
    from fastv.measure.plot import plot_speedup

    path = plot_speedup(result, result.model_config, tmp_path / "bench_test.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_workload_has_the_preset_prompt_length():
    work = preset_workload("video-llava-7b", scale=32, layers=2, batch_size=1)
    ids = work.inputs["input_ids"]
    assert ids.shape == (1, 35 + 2048 + 40)
    assert int((ids == get_preset("video-llava-7b").image_token_id).sum()) == 2048
    with torch.inference_mode():
        out = work.model(**work.inputs, use_cache=True, logits_to_keep=1)
    assert cache_lengths(output_cache(out)) == [2123, 2123]
    assert cache_bytes(output_cache(out)) == 2 * 2 * 4 * 1 * 128 * 2123  # K+V, 2 layers, fp32, 1 head x 128


def test_local_checkpoint(tmp_path):
    work = preset_workload("llava-1.5-7b", scale=32, layers=3)
    work.model.save_pretrained(tmp_path / "tiny-llava")
    result = bench(str(tmp_path / "tiny-llava"), [FastVConfig(k=2, ratio=0.5)], layout=(5, 1, 7), **TINY)
    assert result.layout == (5, 576, 7)
    assert all(v.kv_bytes_measured == v.kv_bytes_formula for v in result.variants)


def test_peak_memory_sees_an_allocation():
    with PeakMemory("cpu") as mem:
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del x
    assert mem.delta >= 48 * 2**20


def test_settings_parse():
    assert settings_from_strings(["2:0.5,2:0.75", "3:0.9"]) == [(2, 0.5), (2, 0.75), (3, 0.9)]
    with pytest.raises(ValueError):
        settings_from_strings(["2"])


def test_cli_writes_json_and_png(tmp_path):
    from fastv.cli import main

    argv = ["bench", "--preset", "llava-1.5-7b", "--scale", "32", "--layers", "3", "--ratio", "0.5"]
    argv += ["--repeats", "1", "--decode-steps", "2", "--short-tokens", "2", "--long-tokens", "0"]
    argv += ["--out", str(tmp_path), "--tag", "smoke", "--no-progress"]
    assert main(argv) == 0
    data = json.loads((tmp_path / "smoke.json").read_text())
    assert data["variants"][1]["kv_cache_matches_formula"] is True
    assert (tmp_path / "smoke.png").stat().st_size > 0
