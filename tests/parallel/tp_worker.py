"""Run under ``torchrun --nproc_per_node N``: every family's saved tiny checkpoint loaded with tensor
parallelism (tp_plan="auto", gloo on CPU), FastV applied, results of each rank written for the test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import torch.distributed as dist
from transformers import AutoModelForImageTextToText
from transformers.distributed import DistributedConfig

import fastv
from fastv.selfcheck.checks import generate

RANKS = ("last_token", "mean")


def fastv_results(model, inputs: dict) -> dict:
    """Per ranker: prefill logits, kept positions and 8 greedy tokens of FastV(k=2, R=0.5), and whether the
    ranking layer's heads were sharded over ranks; and the unpruned prefill logits (the model's own TP noise)."""
    with torch.no_grad():
        results: dict = {"unpruned": {"logits": model(**inputs).logits}}
    for rank in RANKS:
        fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.5, rank=rank))
        sharded = model._fastv_patch.head_group is not None
        with torch.no_grad():
            logits = model(**inputs).logits
        kept = fastv.last_keep(model)[0]
        tokens = generate(model, inputs, 8).sequences
        fastv.remove(model)
        results[rank] = {"logits": logits, "kept": kept, "tokens": tokens, "sharded": sharded}
    return results


def run(directory: Path) -> dict:
    model = AutoModelForImageTextToText.from_pretrained(
        directory, distributed_config=DistributedConfig(tp_plan="auto"), attn_implementation="sdpa"
    ).eval()
    return fastv_results(model, torch.load(directory / "inputs.pt"))


def main() -> None:
    root = Path(sys.argv[1])
    for directory in sorted(path for path in root.iterdir() if (path / "inputs.pt").exists()):
        results = run(directory)
        torch.save(results, directory / f"rank{dist.get_rank()}.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
