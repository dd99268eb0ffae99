"""FLOPs: Eq. 5 by hand, the paper's Table 1, and the exact count against torch's FlopCounterMode."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json
from dataclasses import replace

import pytest
import torch

from fastv.config import FastVConfig
from fastv.measure import PRESETS, eq5_layer, eq5_ratio, flops, get_preset, kv_cache_bytes, text_shape
from fastv.measure.flops import layer_flops
from fastv.measure.paper import TABLE1_FLOPS_RATIO
from tests.measure.counting import count_flops


def test_eq5_layer_by_hand():
    # n=2, d=3, m=5: 4*2*9 + 2*4*3 + 2*2*3*5 = 72 + 24 + 60
    assert eq5_layer(2, 3, 5) == 156


def test_eq5_ratio_by_hand():
    # L=4, K=1, d=2, m=3, n=4 -> n_hat=2: f(4) = 64 + 64 + 48 = 176, f(2) = 32 + 16 + 24 = 72.
    assert eq5_ratio(4, 2, layers=4, k=1, d=2, m=3) == pytest.approx((176 + 3 * 72) / (4 * 176))


def test_eq5_matches_the_exact_count_for_an_mha_layer_with_two_ffn_matrices():
    """Eq. 5 counts multiply-accumulates: exactly half the exact FLOPs of an MHA, 2-matrix-FFN layer."""
    t = replace(get_preset("llava-1.5-7b").text, ffn_matrices=2)
    assert sum(layer_flops(t, 611).values()) == 2 * eq5_layer(611, t.hidden, t.ffn)


@pytest.mark.parametrize(("preset", "k", "ratio"), sorted(TABLE1_FLOPS_RATIO))
def test_table1_ratios_within_a_point(preset, k, ratio):
    report = flops(preset, fastv=FastVConfig(k=k, ratio=ratio))
    paper = TABLE1_FLOPS_RATIO[(preset, k, ratio)]
    assert abs(report.eq5_ratio - paper) < 0.01
    assert round(100 * report.eq5_ratio) == round(100 * paper)  # it even rounds to the table's figure
    assert abs(report.exact_ratio - paper) < 0.01


def test_the_papers_absolute_figure_is_one_layer_of_eq5():
    """The paper's "99.3B FLOPs" for LLaVA-1.5-7B is Eq. 5 of ONE layer at the Table 1 layout (n = 612)."""
    report = flops("llava-1.5-7b", fastv=FastVConfig(k=2, ratio=0.5))
    assert report.n == [612]
    assert round(report.eq5_one_layer / 1e9, 1) == 99.3


def test_the_other_readings_are_the_shared_notes_numbers():
    """R on all tokens: 52.4%; R on image tokens with a 40-token question: 57.8% (shared/README)."""
    chat = flops("llava-1.5-7b", get_preset("llava-1.5-7b").chat_layout, FastVConfig(k=2, ratio=0.5))
    assert chat.n == [651]
    assert round(chat.eq5_ratio_all_tokens, 3) == 0.524
    assert round(chat.eq5_ratio, 3) == 0.578


def test_causal_attention_counts_the_lower_triangle():
    dense = flops("llava-1.5-7b", (0, 576, 0), FastVConfig(k=2, ratio=0.5))
    causal = flops("llava-1.5-7b", (0, 576, 0), FastVConfig(k=2, ratio=0.5), attention="causal")
    t = dense.text
    assert causal.exact_baseline["attn_scores"] == t.layers * 2 * (576 * 577 // 2) * t.q_dim
    assert dense.exact_baseline["attn_scores"] == t.layers * 2 * 576 * 576 * t.q_dim
    assert causal.exact_baseline["ffn"] == dense.exact_baseline["ffn"]
    with pytest.raises(ValueError):
        flops("llava-1.5-7b", attention="sparse")


def test_a_batch_is_the_sum_of_its_samples():
    cfg = FastVConfig(k=3, ratio=0.75)
    a, b = (10, 576, 3), (35, 2048, 40)
    both = flops("llava-1.5-7b", [a, b], cfg)
    one, two = flops("llava-1.5-7b", a, cfg), flops("llava-1.5-7b", b, cfg)
    assert both.exact_llm_fastv == one.exact_llm_fastv + two.exact_llm_fastv
    assert both.eq5_baseline == pytest.approx(one.eq5_baseline + two.eq5_baseline)
    assert both.n_hat == [10 + 576 - 432 + 3, 35 + 2048 - 1536 + 40]


def test_keep_overrides_ratio():
    report = flops("llava-1.5-7b", (35, 576, 0), FastVConfig(k=2, keep=64))
    assert report.n_hat == [35 + 64]


def test_kv_cache_formula_by_hand():
    t = get_preset("qwen2-vl-7b").text  # 4 KV heads x 128, 28 layers
    assert kv_cache_bytes(t, n=100, n_hat=40, k=2, dtype_bytes=2) == 2 * 2 * 4 * 128 * (2 * 100 + 26 * 40)


def test_presets_build_configs_of_their_shape():
    for preset in PRESETS.values():
        assert text_shape(preset.to_config()) == preset.text
        assert text_shape(preset.to_config(scale=4, layers=6)).layers == 6


def test_qwen2_vl_config_is_counted_with_gqa():
    from transformers import Qwen2VLConfig

    report = flops(Qwen2VLConfig(), (15, 1024, 40))
    t = report.text
    assert t.kv_heads < t.heads
    assert report.exact_baseline["k_v_proj"] * t.heads == report.exact_baseline["q_o_proj"] * t.kv_heads
    assert report.vision["vision_tower"] > 0  # 1024 merged tokens -> 4096 patches through the tower


def _count(model, **inputs) -> int:
    """FlopCounterMode's total for a prefill, less the rotary tables it saw (counted up to transformers 5.18;
    fastv's count leaves RoPE out on every release)."""
    counted, rotary_tables = count_flops(model, **inputs, logits_to_keep=1)
    return counted["Global"] - rotary_tables


def test_exact_count_equals_flop_counter_on_a_tiny_gqa_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=100,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        attn_implementation="eager",  # SDPA's CPU kernel is invisible to FlopCounterMode
    )
    model = LlamaForCausalLM(config).eval()
    counted = _count(model, input_ids=torch.randint(0, 100, (2, 18)))
    assert counted == flops(config, [(3, 10, 5)] * 2).exact_llm_baseline


def _tiny_llava(layers: int = 4):
    from transformers import LlavaForConditionalGeneration

    preset = get_preset("video-llava-7b")  # 8 images of 16x16 tokens through a tiny CLIP tower
    config = preset.to_config(scale=32, layers=layers)
    for c in (config, config.text_config, config.vision_config):
        c._attn_implementation = "eager"
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    n_images, side = preset.image_grid
    before, image, after = 5, n_images * side * side, 7
    ids = torch.randint(0, 1000, (1, before + image + after))
    ids[0, before : before + image] = preset.image_token_id
    inputs = {"input_ids": ids, "pixel_values": torch.randn(n_images, 3, 2 * side, 2 * side)}
    return model, config, (before, image, after), inputs


def test_exact_count_equals_flop_counter_on_a_tiny_llava_with_vision():
    model, config, layout, inputs = _tiny_llava()
    report = flops(config, layout)
    assert _count(model, **inputs) == report.exact_llm_baseline + report.vision_total


def test_exact_fastv_count_matches_a_pruned_forward():
    """The pruned forward costs the formula's count plus the ranking: the last prompt token's query
    projection and its row of scores against layer K-1's cached keys. The first prefill after apply
    also re-projects layer K-1's keys once, to check the family adapter against the cached ones."""
    import fastv

    if not callable(getattr(fastv, "apply", None)):
        pytest.skip("fastv.apply is not available yet")
    model, config, layout, inputs = _tiny_llava()
    cfg = FastVConfig(k=2, ratio=0.5, rank="last_token")
    report = flops(config, layout, cfg)
    fastv.apply(model, cfg)
    try:
        first, counted = _count(model, **inputs), _count(model, **inputs)
    finally:
        fastv.remove(model)
    t, n = report.text, report.n[0]
    ranking = 2 * t.hidden * t.q_dim + 2 * n * t.q_dim
    assert counted == report.exact_llm_fastv + report.vision_total + ranking
    assert first == counted + 2 * n * t.hidden * t.kv_dim  # the one-off adapter check
    assert counted < report.exact_llm_baseline + report.vision_total


def test_cli_prints_table1_json():
    from fastv.cli import main

    assert main(["flops", "--preset", "llava-1.5-7b", "--k", "2", "--ratio", "0.5"]) == 0


def test_cli_json(capsys):
    from fastv.cli import main

    assert main(["flops", "--preset", "llava-1.5-13b", "--ratio", "0.5", "0.75", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [round(100 * r["eq5"]["ratio_image_tokens"]) for r in out] == [55, 32]


def test_cli_rejects_unknown_preset():
    from fastv.cli import main

    assert main(["flops", "--preset", "nope"]) == 2
