"""``fastv eval`` from the command line: built-in model by default, easy-VQA or a JSONL file."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from fastv.cli import main
from fastv.eval.datasets import load_easyvqa

pytest.importorskip("easy_vqa")


def test_eval_on_easyvqa_writes_results(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["eval", "--n", "8", "--ratios", "0,0.5", "--rank", "mean", "--batch-size", "4",
                 "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    payload = json.loads((out / "results.json").read_text())
    assert [r["setting"] for r in payload["results"]] == ["baseline", "K2 R50 mean"]
    assert payload["meta"]["n"] == 8 and payload["meta"]["args"]["k"] == [2]
    assert (out / "accuracy_vs_flops.png").stat().st_size > 0
    assert "K2 R50 mean" in capsys.readouterr().out  # the rich table


def test_eval_on_a_jsonl_file(tmp_path):
    samples = load_easyvqa("test", n=4, seed=1)
    (tmp_path / "img").mkdir()
    lines = []
    for i, s in enumerate(samples):
        s.load_image().save(tmp_path / "img" / f"{i}.png")
        lines.append(json.dumps({"image": f"img/{i}.png", "question": s.question, "answer": s.answers[0]}))
    (tmp_path / "mini.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    code = main(["eval", "--data", str(tmp_path / "mini.jsonl"), "--ratios", "0,0.9", "--rank", "random",
                 "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert [r["n"] for r in results] == [4, 4]
    assert results[1]["kept_image_tokens"] == 64 - 57  # floor(0.9 * 64) dropped


def test_eval_rejects_unknown_ranker(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--rank", "last_token,bogus"])
    assert "bogus" in capsys.readouterr().err


def test_eval_grid_on_sort_of_clevr(tmp_path, monkeypatch, capsys):
    """Several K, ratios and token budgets in one run; per-type accuracy and standard errors."""
    monkeypatch.setenv("FASTV_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    code = main(["eval", "--data", "sortofclevr", "--n", "12", "--k", "2,3", "--ratios", "0,0.5", "--keep", "8",
                 "--rank", "last_token,random", "--batch-size", "6", "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    payload = json.loads((out / "results.json").read_text())
    rows = {r["setting"]: r for r in payload["results"]}
    assert list(rows) == [
        "baseline",
        "K2 R50 last_token", "K2 R50 random", "K2 keep8 last_token", "K2 keep8 random",
        "K3 R50 last_token", "K3 R50 random", "K3 keep8 last_token", "K3 keep8 random",
    ]  # fmt: skip
    for r in rows.values():
        p = r["correct"] / r["n"]
        assert r["stderr"] == pytest.approx((p * (1 - p) / r["n"]) ** 0.5)
        assert sum(k["n"] for k in r["by_kind"].values()) == r["n"] == 12
        assert sum(k["correct"] for k in r["by_kind"].values()) == r["correct"]
    assert rows["K2 keep8 last_token"]["kept_image_tokens"] == 8  # read back from the model, not computed
    assert rows["K3 R50 random"]["kept_image_tokens"] == rows["baseline"]["image_tokens"] / 2
    assert "accuracy (%) per question type" in capsys.readouterr().out
