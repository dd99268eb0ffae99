"""The evaluation runner on the built-in model: accuracy, measured pruning, FLOPs, JSON and PNG."""

from __future__ import annotations

import json
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

import fastv
from fastv.builtin import load_builtin
from fastv.eval.datasets import load_easyvqa
from fastv.eval.report import markdown_table, write_results
from fastv.eval.runner import (
    BASELINE,
    DEFAULT_PROMPT,
    evaluate,
    is_correct,
    normalize_answer,
    prepare_batches,
    resolve_prompt,
    settings_for,
)

pytest.importorskip("easy_vqa")


def test_normalize_answer():
    assert normalize_answer("  The Circle.\nmore text") == "circle"
    assert normalize_answer("a  red,  shape!") == "red shape"
    assert is_correct("Yes.", ("yes",))
    assert is_correct("teal", ("blue", "teal"))
    assert not is_correct("no", ("yes",))
    assert not is_correct("", ("yes",))


def test_settings_for_runs_the_baseline_once():
    settings = settings_for(2, [0, 0.5, 0.9], ["last_token", "random"])
    assert [s.label for s in settings] == [BASELINE, "K2 R50 last_token", "K2 R50 random", "K2 R90 last_token",
                                           "K2 R90 random"]  # fmt: skip
    assert settings[0].fastv_config() is None
    assert settings[-1].fastv_config() == fastv.FastVConfig(k=2, ratio=0.9, rank="random", seed=0)
    assert all(s.rank is not None for s in settings_for(2, [0.5], ["mean"]))  # no baseline without ratio 0


def test_resolve_prompt_prefers_explicit_then_chat_template():
    class Plain:
        chat_template = None

    class Chat:
        chat_template = "x"

        def apply_chat_template(self, messages, add_generation_prompt):
            text = next(c["text"] for c in messages[0]["content"] if c["type"] == "text")
            return f"CHAT[{text}]"

    assert resolve_prompt(Chat(), "Q: {question} <image>")("why?") == "Q: why? <image>"
    assert resolve_prompt(Chat(), str.upper)("why?") == "WHY?"
    assert resolve_prompt(Chat())("why?") == "CHAT[why?]"
    assert resolve_prompt(Plain())("why?") == DEFAULT_PROMPT.format(question="why?")


def _eq5(n: int, d: int, m: int) -> float:
    return 4 * n * d * d + 2 * n * n * d + 2 * n * d * m


@pytest.fixture(scope="module")
def run():
    model, processor = load_builtin()
    samples = load_easyvqa("test", n=24, seed=0)
    results = evaluate(model, processor, samples, k=2, ratios=[0, 0.5], rankers=["last_token", "random"],
                       batch_size=8, progress=False)  # fmt: skip
    return model, processor, samples, results


def test_runner_fields_and_accuracy(run):
    model, _, samples, results = run
    assert [r["setting"] for r in results] == [BASELINE, "K2 R50 last_token", "K2 R50 random"]
    assert not fastv.is_applied(model)  # every setting cleans up after itself
    for r in results:
        assert r["n"] == len(samples) == len(r["predictions"])
        assert r["correct"] == sum(p["correct"] for p in r["predictions"])
        assert math.isclose(r["accuracy"], r["correct"] / r["n"])
        assert r["time_s"] > 0
    base = results[0]
    assert base["accuracy"] >= 0.8  # a trained model, not a random one
    assert (
        base["flops_ratio"] == base["flops_ratio_exact"] == 1.0
        and base["kept_image_tokens"] == base["image_tokens"] == 64
    )


def test_runner_measures_pruning_and_flops(run):
    model, processor, samples, results = run
    text = model.config.text_config
    L, d, m = text.num_hidden_layers, text.hidden_size, text.intermediate_size
    pruned = results[1]
    assert pruned["kept_image_tokens"] == 32  # read back from fastv.last_keep, not computed
    # Eq. 5 by hand from the real prompt lengths: R applies to the 64 image tokens only.
    ns = [int(mask.sum()) for b in prepare_batches(model, processor, samples, 8) for mask in b.inputs["attention_mask"]]
    expected = sum(2 * _eq5(n, d, m) + (L - 2) * _eq5(n - 32, d, m) for n in ns) / sum(L * _eq5(n, d, m) for n in ns)
    assert math.isclose(pruned["flops_ratio"], expected, rel_tol=1e-9)
    assert 0.5 < pruned["flops_ratio"] < 0.75
    assert 0.5 < pruned["flops_ratio_exact"] < 0.75 and pruned["flops_ratio_exact"] != pruned["flops_ratio"]
    assert results[2]["flops_ratio"] == pruned["flops_ratio"]


def test_results_json_png_and_markdown(run, tmp_path):
    *_, results = run
    json_path, png_path = write_results(results, tmp_path / "out", {"seed": 0}, title="test")
    payload = json.loads(json_path.read_text())
    assert [r["setting"] for r in payload["results"]] == [r["setting"] for r in results]
    assert payload["results"][0]["relative_accuracy"] == 1.0
    assert "predictions" not in payload["results"][0]
    assert len(payload["predictions"][BASELINE]) == 24
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png_path.stat().st_size > 5000
    md = markdown_table(results)
    assert md.count("\n") == 2 + len(results) and "K2 R50 random" in md
