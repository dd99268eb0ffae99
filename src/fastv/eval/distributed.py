"""Data-parallel ``fastv eval`` under ``torchrun`` or ``accelerate launch`` (each sets RANK / WORLD_SIZE).

Every rank evaluates an interleaved shard of the questions (rank r takes r, r + W, ...); the shards are
gathered with ``torch.distributed`` and re-interleaved, so every figure is computed over the same
questions in the same order as one process would (batches differ, and FastV keeps per-sample results
independent of batch composition).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def world() -> tuple[int, int]:
    """(rank, world size) of this launch; (0, 1) for a plain process."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def device_for(device: str) -> str:
    """A CUDA device per local rank (``cuda`` -> ``cuda:LOCAL_RANK``); other devices as given."""
    if device == "cuda" and world()[1] > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return device


def start(device: str) -> None:
    """Join the launcher's process group (gloo on CPU, NCCL on GPUs)."""
    if world()[1] > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group(backend)


def shard(items: Sequence[T]) -> list[T]:
    rank, size = world()
    return list(items[rank::size])


def gather_interleaved(parts: list[Any]) -> list[Any]:
    """This rank's per-question list, from every rank, back in the order of the unsharded questions."""
    if world()[1] == 1:
        return parts
    shards: list[list[Any] | None] = [None] * world()[1]
    dist.all_gather_object(shards, parts)
    merged = []
    for index in range(max(len(s) for s in shards)):
        merged += [s[index] for s in shards if index < len(s)]
    return merged


def gather_max(value: float) -> float:
    if world()[1] == 1:
        return value
    values: list[float | None] = [None] * world()[1]
    dist.all_gather_object(values, value)
    return max(values)
