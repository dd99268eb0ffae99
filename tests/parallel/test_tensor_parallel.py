"""Tensor parallelism (torchrun, 2 ranks, gloo, CPU): every rank keeps exactly the tokens the
single-process run keeps, and logits and generated tokens equal it, for every family."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fastv
from fastv import compat
from fastv.families import supported_families
from fastv.selfcheck.cases import CASES
from tests.parallel.tp_worker import RANKS, fastv_results

WORLD = 2
# transformers itself cannot load these with tp_plan="auto" (so there is nothing for FastV to check):
# Qwen3-VL-MoE's packed expert weights fail to load ("gate_up_proj ... size mismatch"; seen on 5.24);
# Molmo2 has no tp_plan ("`tp_size=2` was requested, but `Molmo2ForConditionalGeneration` has no `tp_plan`").
NOT_LOADABLE = {"qwen3_vl_moe", "molmo2"}
pytestmark = pytest.mark.skipif(
    not compat.stock_tensor_parallel_runs_vlms(),
    reason="transformers' own tensor parallelism fails on Gemma 4 / MoE models here (up to 5.18), before FastV runs",
)
if compat.perception_lm_forces_timm_tower():  # the tiny CLIP stand-in would reload as timm, not installed here
    NOT_LOADABLE.add("perception_lm")
FAMILIES = sorted(f for f in set(CASES) - NOT_LOADABLE if supported_families()[f].unavailable_reason() is None)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("tp")
    expected, sharded = {}, {}
    for family in FAMILIES:
        case = CASES[family]("sdpa")
        plan = case.model.config.get_text_config().base_model_tp_plan or {}
        sharded[family] = any("self_attn" in key for key in plan)  # Qwen3-VL's plan shards embeddings only
        case.model.save_pretrained(root / family)
        torch.save(case.inputs, root / family / "inputs.pt")
        expected[family] = fastv_results(case.model, case.inputs)
    worker = Path(__file__).with_name("tp_worker.py")
    # The workers import the fastv this process imported (a worktree's src, not another checkout's install).
    paths = [str(Path(fastv.__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(paths)}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={WORLD}",
        str(worker),
        str(root),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return expected, sharded, root


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_every_rank_equals_the_single_process_run(runs, family):
    expected, sharded, root = runs
    for rank_id in range(WORLD):
        got = torch.load(root / family / f"rank{rank_id}.pt")
        # Sharded matmuls sum in another order: the unpruned model's own TP-vs-single difference bounds
        # what FastV may add (a hybrid decoder's fp32 chunked recurrence reaches about 1e-4 by itself).
        noise = float((got["unpruned"]["logits"] - expected[family]["unpruned"]["logits"]).abs().max())
        for rank in RANKS:
            want, have = expected[family][rank], got[rank]
            assert have["sharded"] == sharded[family], (family, "tensor parallelism did not shard as planned")
            assert torch.equal(have["kept"], want["kept"]), (family, rank_id, rank)
            diff = float((have["logits"] - want["logits"]).abs().max())
            assert diff < max(1e-4, 4 * noise), (family, rank_id, rank, diff, noise)
            assert torch.equal(have["tokens"], want["tokens"]), (family, rank_id, rank)
