"""Tensor parallelism: attention heads sharded over ranks (transformers' ``tp_plan``).

Each rank computes ranking scores from its own heads only; the ranks must agree on one kept set,
or the sharded layers would combine activations of different sequences. Scores are therefore
averaged over *all* heads with one all-reduce (a few KB per prompt), which gives every rank exactly
the single-process ranking; computing on one rank and broadcasting would need that rank to hold
every head's queries and keys, which it does not.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def head_shard_group(attention: nn.Module) -> dist.ProcessGroup | None:
    """The process group ``attention``'s heads are sharded over, or None when it holds every head."""
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:
        return None
    for parameter in attention.parameters():
        if isinstance(parameter, DTensor) and any(placement.is_shard() for placement in parameter.placements):
            return parameter.device_mesh.get_group()
    return None


def average_over_all_heads(scores: torch.Tensor, local_heads: int, group: dist.ProcessGroup) -> torch.Tensor:
    """Turn per-rank head-averaged scores (B, n) into the average over every rank's heads."""
    weighted = torch.cat([scores.float().flatten() * local_heads, scores.new_tensor([float(local_heads)])])
    dist.all_reduce(weighted, op=dist.ReduceOp.SUM, group=group)
    return (weighted[:-1] / weighted[-1]).view(scores.shape)
