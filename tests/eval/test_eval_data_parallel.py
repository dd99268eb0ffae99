"""``fastv eval`` launched data-parallel (torchrun, 2 ranks, gloo on CPU) equals one process: the same
predictions per question, accuracy, FLOPs ratios and kept image tokens for every setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastv
from fastv.cli import main

pytest.importorskip("easy_vqa")

ARGS = ["eval", "--num-samples", "24", "--batch-size", "5", "--ratios", "0,0.5,0.9", "--rank", "last_token,random",
        "--no-progress"]  # fmt: skip
COMPARED = (
    "setting",
    "n",
    "correct",
    "accuracy",
    "flops_ratio",
    "flops_ratio_exact",
    "image_tokens",
    "kept_image_tokens",
)


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    assert main([*ARGS, "--out", str(tmp_path / "one")]) == 0
    script = Path(fastv.__file__).with_name("__main__.py")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    done = subprocess.run([*command, *ARGS, "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = (json.loads((tmp_path / name / "results.json").read_text()) for name in ("one", "two"))
    assert two["meta"]["processes"] == 2 and one["meta"]["processes"] == 1
    assert [{k: r[k] for k in COMPARED} for r in one["results"]] == [
        {k: r[k] for k in COMPARED} for r in two["results"]
    ]
    assert one["predictions"] == two["predictions"]
