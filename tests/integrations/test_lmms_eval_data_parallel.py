"""Data-parallel lmms-eval (2 ranks, torchrun, gloo on CPU: the launcher `accelerate launch` uses on GPUs sets
the same variables): the same per-sample answers and FLOPs, accuracy and run-level FLOPs as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integrations.conftest import fake_entry_point


def _run(tmp_path: Path, ckpt: Path, include_path: Path, launcher: list[str], name: str) -> tuple[dict, list[dict]]:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(fake_entry_point(tmp_path / "ep")), env.get("PYTHONPATH", "")])
    out = tmp_path / name
    cmd = [*launcher, "-m", "lmms_eval", "--model", "fastv", "--tasks", "fastv_easyvqa", "--log_samples"]
    cmd += ["--model_args", f"pretrained={ckpt},k=2,ratio=0.5,device=cpu", "--batch_size", "2"]
    cmd += ["--include_path", str(include_path), "--output_path", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    results = list(out.rglob("*_results.json"))
    assert results, proc.stdout[-3000:] + proc.stderr[-3000:]
    samples = [json.loads(line) for line in next(out.rglob("*_samples_*.jsonl")).read_text().splitlines()]
    return json.loads(results[0].read_text()), samples


@pytest.mark.slow
def test_two_ranks_equal_one_process(tmp_path, ckpt, include_path):
    single = _run(tmp_path, ckpt, include_path, [sys.executable], "single")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    parallel = _run(tmp_path, ckpt, include_path, torchrun, "parallel")
    per_sample = [
        sorted((s["doc_id"], s["filtered_resps"], s["flops_pct"]) for s in run[1]) for run in (single, parallel)
    ]
    assert len(per_sample[0]) == 20 and per_sample[0] == per_sample[1]
    one, two = (run[0]["results"]["fastv_easyvqa"] for run in (single, parallel))
    assert one["exact_match,none"] == two["exact_match,none"] and one["flops_pct,none"] == two["flops_pct,none"]
    fastv_one = {k: v for k, v in single[0]["throughput"].items() if k.startswith("avg_fastv")}
    fastv_two = {k: v for k, v in parallel[0]["throughput"].items() if k.startswith("avg_fastv")}
    assert fastv_one == fastv_two and fastv_one["avg_fastv_flops_pct"] < 100
