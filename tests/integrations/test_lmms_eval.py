"""lmms-eval plugin end to end: a tiny checkpoint on disk, the local easy-VQA tasks, lmms-eval's own evaluator.

Runs in CI (the ``fastv[lmms]`` extra is installed there). The key check: the answers lmms-eval
records equal ``model.generate`` with ``fastv.apply`` on hand-built inputs, so the plugin adds
nothing of its own to what is evaluated; batching (left padding) must not change them either.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import lmms_eval  # noqa: F401  (the extra must be installed where this suite runs)
import pytest
import torch
from lmms_eval.evaluator import simple_evaluate
from lmms_eval.models.registry_v2 import ModelRegistryV2
from lmms_eval.tasks import TaskManager
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

import fastv
from fastv.integrations.lmms_eval import ledger
from fastv.integrations.lmms_eval.make_task import records
from fastv.integrations.lmms_eval.model import FastVModel
from fastv.integrations.lmms_eval.options import fastv_config
from fastv.integrations.lmms_eval.summarize import markdown, rows
from tests.integrations.conftest import N_DOCS, fake_entry_point


def _evaluate(lm: FastVModel, include_path: Path, tasks: list[str], limit: int | None = None) -> dict:
    return simple_evaluate(
        model=lm, tasks=tasks, task_manager=TaskManager(include_path=str(include_path)), limit=limit, bootstrap_iters=0
    )


def _direct_answers(ckpt: Path, config: fastv.FastVConfig | None) -> list[str]:
    """The same questions through plain ``generate`` (batch of one, prompt written out by hand)."""
    model = AutoModelForImageTextToText.from_pretrained(ckpt, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(ckpt)
    if config is not None:
        fastv.apply(model, config)
    answers = []
    for doc in records(N_DOCS):
        with Image.open(doc["image"]) as im:
            image = im.convert("RGB")
        inputs = processor(text=f"<image>\nQuestion: {doc['question']} Answer:", images=[image], return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=4, do_sample=False, pad_token_id=0)
        answers.append(processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))
    return [a.strip() for a in answers]


@pytest.mark.parametrize("setting", [{}, {"k": 2, "ratio": 0.5}], ids=["baseline", "k2r50"])
def test_generation_matches_direct_generate(ckpt, include_path, setting):
    lm = FastVModel(pretrained=str(ckpt), batch_size=4, device="cpu", **setting)
    results = _evaluate(lm, include_path, ["fastv_easyvqa"])
    samples = sorted(results["samples"]["fastv_easyvqa"], key=lambda s: s["doc_id"])
    assert len(samples) == N_DOCS
    plugin = [s["resps"][0][0] for s in samples]
    assert plugin == _direct_answers(ckpt, lm.fastv_config)
    if lm.fastv_config is not None:  # pruning really happened: this model's answers change with it
        assert plugin != _direct_answers(ckpt, None)

    row = results["results"]["fastv_easyvqa"]
    assert 0.0 <= row["exact_match,none"] <= 1.0
    throughput = results["throughput"]
    if lm.fastv_config is None:
        assert row["flops_pct,none"] == pytest.approx(100.0)
        assert throughput["avg_fastv_k"] == 0
    else:
        # 16 image tokens per prompt, half dropped after layer 2 of 4: clearly fewer FLOPs, never more.
        assert 50.0 < row["flops_pct,none"] < 95.0
        assert throughput["avg_fastv_flops_pct"] == pytest.approx(row["flops_pct,none"])
        assert throughput["avg_fastv_kept_image_tokens_per_prompt"] == 8


def test_loglikelihood_equals_first_step_logits(ckpt, include_path):
    """Multiple choice over one-word answers: each score is log_softmax of generate's first-step logits."""
    config = fastv.FastVConfig(k=2, ratio=0.5)
    lm = FastVModel(pretrained=str(ckpt), batch_size=5, device="cpu", k=2, ratio=0.5)
    results = _evaluate(lm, include_path, ["fastv_easyvqa_mc"], limit=3)
    samples = sorted(results["samples"]["fastv_easyvqa_mc"], key=lambda s: s["doc_id"])
    assert 0.0 < results["results"]["fastv_easyvqa_mc"]["flops_pct,none"] < 100.0

    model = AutoModelForImageTextToText.from_pretrained(ckpt, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(ckpt)
    fastv.apply(model, config)
    for sample, doc in zip(samples, records(N_DOCS)[:3], strict=True):
        with Image.open(doc["image"]) as im:
            image = im.convert("RGB")
        inputs = processor(text=f"<image>\nQuestion: {doc['question']} Answer:", images=[image], return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(
                **inputs, max_new_tokens=1, do_sample=False, output_logits=True, return_dict_in_generate=True
            )
        logprobs = torch.log_softmax(out.logits[0][0].float(), dim=-1)
        ids = [processor.tokenizer.convert_tokens_to_ids(c) for c in doc["choices"]]
        got = [resp[0] for resp in sample["resps"]]
        for (ll, greedy), token in zip(got, ids, strict=True):
            assert ll == pytest.approx(float(logprobs[token]), abs=1e-4)
            assert greedy == (int(logprobs.argmax()) == token)


def test_one_instance_serves_several_runs(ckpt, include_path):
    lm = FastVModel(pretrained=str(ckpt), batch_size=2, device="cpu", k=1, keep=4)
    first = _evaluate(lm, include_path, ["fastv_easyvqa"], limit=2)
    second = _evaluate(lm, include_path, ["fastv_easyvqa"], limit=2)
    assert first["results"]["fastv_easyvqa"]["flops_pct,none"] == second["results"]["fastv_easyvqa"]["flops_pct,none"]
    assert ledger.current().total().prompts == 2  # the second run started a fresh ledger
    assert first["throughput"]["avg_fastv_keep"] == 4


def test_options():
    assert fastv_config() is None
    assert fastv_config(k=2, ratio=0) is None
    assert fastv_config(k=2) == fastv.FastVConfig(k=2, ratio=0.5)
    assert fastv_config(k=3, ratio=0.75, rank="mean") == fastv.FastVConfig(k=3, ratio=0.75, rank="mean")
    assert fastv_config(k=2, ratio=0, keep=64).keep == 64  # keep overrides ratio, even ratio=0
    assert fastv_config(k=2, budget="per_image").budget == "per_image"
    with pytest.raises(ValueError, match="no k"):
        fastv_config(ratio=0.5)
    with pytest.raises(ValueError, match="whole number"):
        fastv_config(k=2.5)
    with pytest.raises(ValueError, match="rank"):
        fastv_config(k=2, rank="best")


def test_pretrained_builtin_names_the_packaged_model(ckpt, monkeypatch):
    import fastv.builtin

    monkeypatch.setattr(fastv.builtin, "BUILTIN_MODEL_DIR", ckpt)
    lm = FastVModel(pretrained="builtin", device="cpu", k=2)
    assert lm.pretrained == str(ckpt) and fastv.is_applied(lm.model)
    monkeypatch.setattr(fastv.builtin, "BUILTIN_MODEL_DIR", ckpt / "missing")
    with pytest.raises(FileNotFoundError, match=r"fastv\.builtin\.train"):
        FastVModel(pretrained="builtin", device="cpu")


def test_unknown_model_args_fail_before_loading():
    with pytest.raises(ValueError, match="Unknown model_args for fastv: colour"):
        FastVModel(pretrained="/nonexistent", colour="red")


def test_task_data_uses_absolute_paths(include_path):
    folder = include_path / "fastv_easyvqa"
    rows = [json.loads(line) for line in (folder / "fastv_easyvqa.jsonl").read_text().splitlines()]
    assert len(rows) == N_DOCS and [r["doc_id"] for r in rows] == list(range(N_DOCS))
    assert all(Path(r["image"]).is_absolute() and Path(r["image"]).is_file() for r in rows)
    data_line = next(line for line in (folder / "fastv_easyvqa.yaml").read_text().splitlines() if "test:" in line)
    assert Path(json.loads(data_line.split("test:", 1)[1])).is_absolute()


def test_entry_point_resolves_to_the_plugin(tmp_path, monkeypatch, ckpt):
    from importlib.metadata import entry_points

    if not any(ep.name == "fastv" for ep in entry_points(group="lmms_eval.models")):
        monkeypatch.syspath_prepend(str(fake_entry_point(tmp_path)))
    registry = ModelRegistryV2()
    registry.load_entrypoint_manifests()
    cls = registry.get_model_class("fastv")
    assert cls is FastVModel
    lm = cls.create_from_arg_string(f"pretrained={ckpt},k=2,ratio=0.5,rank=mean,device=cpu", {"batch_size": 2})
    assert lm.fastv_config == fastv.FastVConfig(k=2, ratio=0.5, rank="mean") and lm.batch_size == 2


def test_cli_writes_accuracy_and_flops(tmp_path, ckpt, include_path):
    """``lmms-eval --model fastv`` as a user runs it; the CLI exits 0 even on failure, so read the file."""
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(fake_entry_point(tmp_path / "ep")), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "lmms_eval", "--model", "fastv", "--tasks", "fastv_easyvqa", "--limit", "4"]
    cmd += ["--model_args", f"pretrained={ckpt},k=2,ratio=0.5,device=cpu", "--batch_size", "2"]
    cmd += ["--include_path", str(include_path), "--output_path", str(tmp_path / "out")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    files = list((tmp_path / "out").rglob("*_results.json"))
    assert files, proc.stdout[-3000:] + proc.stderr[-3000:]
    saved = json.loads(files[0].read_text())
    row = saved["results"]["fastv_easyvqa"]
    assert not math.isnan(row["exact_match,none"]) and 50.0 < row["flops_pct,none"] < 95.0
    assert "k=2,ratio=0.5" in saved["config"]["model_args"]
    assert saved["throughput"]["avg_fastv_ratio"] == 0.5
    table = markdown(rows(saved))  # what `python -m fastv.integrations.lmms_eval.summarize OUT` prints
    assert f"| fastv_easyvqa | exact_match | {row['exact_match,none']:.4f} | {row['flops_pct,none']:.1f}% |" in table
