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
    assert payload["meta"]["n"] == 8 and payload["meta"]["args"]["k"] == 2
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
