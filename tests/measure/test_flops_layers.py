"""FLOPs and KV-cache bytes of decoders whose layers differ (hybrid linear attention, MoE, Gemma 4's
per-layer head size), against torch's FlopCounterMode on the tiny models' real forward and against
the bytes a real pruned cache holds."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
from torch import nn

import fastv
from fastv.compat import output_cache
from fastv.families import family_for
from fastv.families.gemma4.selfcheck import tiny_gemma4
from fastv.families.lfm2_vl.selfcheck import tiny_lfm2_vl
from fastv.families.minicpmv4_6.selfcheck import tiny_minicpmv4_6
from fastv.families.qwen3_5.selfcheck import tiny_qwen3_5
from fastv.families.qwen3_vl.selfcheck import tiny_qwen3_vl
from fastv.measure import flops, kv_cache_bytes, text_shape
from fastv.measure.flops import attention_pairs
from fastv.selfcheck.prompts import qwen3_prompt
from fastv.selfcheck.tiny import IMAGE_TOKEN, VIDEO_TOKEN
from tests.measure.counting import count_flops

N = 20  # prompt tokens; more than the tiny Gemma 4's sliding window (8)


def _counted(model: nn.Module) -> tuple[dict[str, int], int]:
    """FlopCounterMode per module of a text-only prefill, and its rotary tables' share (counted up to 5.18,
    left out of fastv's count); experts as a loop of matmuls, which it sees (grouped_mm is invisible to it).
    Weights are frozen: from transformers 5.25 the recurrent mixers' convolution is a kernels function-module
    called with the conv's bias, and FlopCounterMode's module tracker cannot hook a leaf that requires grad
    under no_grad."""
    model.set_experts_implementation("eager")
    model.requires_grad_(False)
    return count_flops(model, input_ids=torch.randint(0, 50, (1, N)), logits_to_keep=1)


@pytest.mark.parametrize(
    "build",
    [lambda: tiny_gemma4("eager", moe=True), lambda: tiny_qwen3_vl("eager", moe=True)],
    ids=["gemma4_moe", "qwen3_vl_moe"],
)
def test_attention_and_moe_decoders_equal_the_flop_counter(build):
    """Gemma 4 26B-style (global layers with their own head size and no v_proj, a dense MLP beside a
    routed expert block) and Qwen3-VL-MoE: every matmul, experts at top-k, router apart."""
    model = build().model
    report = flops(model.config, (N, 0, 0))
    assert report.text.per_layer
    counted, rotary_tables = _counted(model)
    assert counted["Global"] == report.exact_llm_baseline + rotary_tables


def test_gemma4_layers_carry_their_own_head_size_and_window():
    model = tiny_gemma4("eager", moe=True).model
    layers = text_shape(model.config).per_layer
    text = model.config.text_config
    for layer, kind, per_layer in zip(layers, text.layer_types, text.per_layer_config, strict=True):
        assert layer.mixer == kind
        assert layer.q_dim == text.num_attention_heads * per_layer.head_dim
        assert layer.window == (text.sliding_window if kind == "sliding_attention" else None)
    assert layers[0].q_dim != layers[1].q_dim  # the tiny config gives global layers a bigger head


@pytest.mark.parametrize(
    "build",
    [
        lambda: tiny_qwen3_5("eager"),
        lambda: tiny_qwen3_5("eager", moe=True),
        lambda: tiny_minicpmv4_6("eager"),
        lambda: tiny_lfm2_vl("eager"),
        lambda: tiny_lfm2_vl("eager", moe=True),
    ],
    ids=["qwen3_5", "qwen3_5_moe", "minicpmv4_6", "lfm2_vl", "lfm2_vl_moe"],
)
def test_hybrid_decoder_projections_equal_the_flop_counter(build):
    """Hybrid decoders: attention layers (Qwen3.5's gated queries), MoE, and the recurrent mixers'
    projections are counted exactly. The recurrent mixers' own convolution and recurrence are left out on
    both sides: the reference kernels compute a padded convolution and a chunked delta rule, while fastv
    counts the convolution over the n real positions and models the recurrence (3 state-sized MACs per
    value head and token, checked by hand here)."""
    model = build().model
    family = family_for(model)
    lm = family.language_model(model)
    text = family.text_config(lm)
    report = flops(model.config, (N, 0, 0))
    counted, rotary_tables = _counted(model)
    mixers = {
        name: module
        for name, module in model.named_modules()
        if any(
            module is family.recurrent_mixer(layer) for i, layer in enumerate(lm.layers) if family.is_recurrent(i, text)
        )
    }
    assert mixers, "the tiny model has recurrent layers"
    kernel_counted = kernel_formula = recurrence = 0
    for name, mixer in mixers.items():
        key = next(k for k in counted if k.endswith(name))
        linears = [f"{key}.{child}" for child, m in mixer.named_children() if isinstance(m, nn.Linear)]
        kernel_counted += counted[key] - sum(counted.get(child, 0) for child in linears)
        kernel_formula += sum(2 * N * m.weight.numel() for m in mixer.modules() if isinstance(m, nn.Conv1d))
        if hasattr(mixer, "num_v_heads"):
            recurrence += 2 * N * 3 * mixer.num_v_heads * mixer.head_k_dim * mixer.head_v_dim
    assert report.exact_baseline["recurrence"] == recurrence
    decoder = next(v for k, v in counted.items() if k.endswith(".language_model"))  # MiniCPM-V ignores logits_to_keep
    expected = report.exact_llm_baseline - report.exact_baseline["lm_head_last"] - recurrence - kernel_formula
    assert decoder - kernel_counted == expected + rotary_tables


def test_qwen3_5_gated_query_projection_is_counted_whole():
    lm = tiny_qwen3_5("eager").model.model.language_model
    gated = lm.layers[1].self_attn
    shape = text_shape(tiny_qwen3_5("eager").model.config).per_layer[1]
    assert gated.q_proj.out_features == 2 * shape.q_dim
    assert shape.mixer_macs == sum(getattr(gated, p).weight.numel() for p in ("q_proj", "k_proj", "v_proj", "o_proj"))


def test_fastv_on_a_hybrid_decoder_saves_only_in_pruned_layers():
    """Layers before K cost the same; a pruned linear-attention layer costs less, linearly in tokens."""
    model = tiny_qwen3_5("sdpa").model
    layout, config = (5, 40, 6), fastv.FastVConfig(k=2, ratio=0.5)
    report = flops(model.config, layout, config)
    n, n_hat = report.n[0], report.n_hat[0]
    assert (n, n_hat) == (51, 31)
    layer2 = report.text.per_layer[2]
    assert layer2.mixer == "linear_attention"
    full = text_shape(model.config)
    assert report.exact_baseline["recurrence"] == 2 * n * (full.per_layer[0].recurrence_macs + layer2.recurrence_macs)
    assert (
        report.exact_fastv["recurrence"]
        == 2 * n * full.per_layer[0].recurrence_macs + 2 * n_hat * layer2.recurrence_macs
    )
    assert 0.5 < report.exact_ratio < 1.0


def test_kv_cache_bytes_equal_a_real_pruned_hybrid_cache():
    """Only attention layers hold keys and values; from K on they hold the kept tokens."""
    vlm = tiny_qwen3_5("sdpa")
    inputs = qwen3_prompt(vlm)
    config = fastv.FastVConfig(k=2, ratio=0.5)
    fastv.apply(vlm.model, config)
    try:
        with torch.no_grad():
            cache = output_cache(vlm.model(**inputs, use_cache=True))
    finally:
        fastv.remove(vlm.model)
    held = sum(
        layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
        for layer in cache.layers
        if hasattr(layer, "keys")
    )
    ids = inputs["input_ids"][0]
    n, image = ids.numel(), int(torch.isin(ids, torch.tensor([IMAGE_TOKEN, VIDEO_TOKEN])).sum())
    t = text_shape(vlm.model.config)
    assert held == kv_cache_bytes(t, n, n - config.n_dropped(image), config.k, dtype_bytes=4)


@pytest.mark.parametrize(("n", "past", "window"), [(6, 0, 4), (3, 5, 4), (10, 0, 20), (1, 9, 4)])
def test_causal_sliding_pairs_equal_a_brute_force_count(n, past, window):
    brute = sum(min(past + i + 1, window) for i in range(n))
    assert attention_pairs(n, past + n, causal=True, window=window) == brute


def test_decoder_parameters_of_a_moe_hybrid_count_every_expert():
    from fastv.measure.capacity import decoder_parameters

    model = tiny_qwen3_5("sdpa", moe=True).model
    lm = model.model.language_model
    real = sum(p.numel() for p in lm.parameters()) + model.lm_head.weight.numel()
    assert decoder_parameters(text_shape(model.config)) == real


def test_a_vision_tower_it_cannot_count_reads_n_a_not_zero():
    from rich.console import Console

    from fastv.measure.render import flops_table

    report = flops(tiny_qwen3_5("sdpa").model.config, (5, 40, 6))
    assert report.vision == {}
    console = Console(width=250, record=True)
    console.print(flops_table([report]))
    row = next(line for line in console.export_text().splitlines() if "K2 R50" in line)
    assert row.count("n/a") == 2 and "0.000" not in row
