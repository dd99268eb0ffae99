"""``fastv capacity``: weights counted exactly, KV bytes from the formula a real cache matches, requests that fit."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import LlamaForCausalLM

from fastv import FastVConfig
from fastv.cli import main
from fastv.compat import output_cache
from fastv.measure.capacity import capacity, decoder_parameters
from fastv.measure.flops import kv_cache_bytes
from fastv.measure.kvcache import cache_bytes
from fastv.measure.shapes import text_shape
from fastv.selfcheck.tiny import text_config


def test_decoder_parameters_are_exact():
    config = text_config(layers=3, hidden=64, heads=4, kv_heads=2)
    model = LlamaForCausalLM(config)
    assert decoder_parameters(text_shape(config)) == sum(p.numel() for p in model.parameters())


def test_kv_per_request_is_the_cache_after_generation():
    """A real DynamicCache after a prompt of n tokens and `out` generated ones holds the formula's bytes."""
    config = text_config(layers=3, hidden=64, heads=4, kv_heads=2)
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(3, 100, (1, 20))
    out = model.generate(ids, max_new_tokens=5, min_new_tokens=5, do_sample=False, return_dict_in_generate=True)
    # generate caches every token but the last one it produced
    expected = kv_cache_bytes(text_shape(config), 20 + 4, 20 + 4, 2, 4)
    assert cache_bytes(output_cache(out)) == expected


def test_requests_fill_the_memory_left_by_the_weights():
    gpu = 141e9
    rows = capacity("llava-1.5-7b", None, [None, FastVConfig(k=2, ratio=0.5)], gpu_bytes=gpu, output_tokens=256)
    base, pruned = rows
    assert base.prompt_tokens == pruned.prompt_tokens == 612 and pruned.kept_tokens == 612 - 288
    assert 7.0e9 < base.weight_bytes / 2 < 7.1e9  # LLaVA-1.5-7B: 7.06B parameters
    for row in rows:
        assert row.requests == int((0.9 * gpu - row.weight_bytes) // row.kv_bytes_per_request)
        assert row.requests * row.kv_bytes_per_request <= 0.9 * gpu - row.weight_bytes
    assert pruned.kv_bytes_per_request < base.kv_bytes_per_request and pruned.requests > base.requests
    assert pruned.prefill_flops_pct == pytest.approx(55.6, abs=0.1) and base.prefill_flops_pct == 100.0


def test_cli_json_and_errors(capsys):
    assert main(["capacity", "--preset", "qwen2.5-vl-7b", "--ratios", "0,0.75", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["setting"] for r in rows] == ["baseline", "FastV(k=2, ratio=0.75, rank=last_token)"]
    assert 8.2e9 < rows[0]["weight_bytes"] / 2 < 8.4e9  # Qwen2.5-VL-7B: 8.29B parameters
    assert main(["capacity", "--gpu-memory-gb", "10"]) == 2
    assert "do not fit in 10.0 GB" in capsys.readouterr().err
