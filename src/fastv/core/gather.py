"""Gathering kept positions out of sequence-shaped tensors."""

from __future__ import annotations

import torch


def gather_sequence(tensor: torch.Tensor, indices: torch.Tensor, seq_dim: int) -> torch.Tensor:
    """Select ``indices`` (B, N) along ``seq_dim`` of a tensor whose batch dim precedes it.

    A broadcast batch of 1 (e.g. position embeddings shared by the batch) is expanded first. The
    indices follow the tensor's device (layers split over devices each gather on their own).
    """
    indices = indices.to(tensor.device)
    seq_dim = seq_dim % tensor.ndim
    batch = indices.shape[0]
    batch_dim = seq_dim - 1
    if tensor.shape[batch_dim] != batch:
        expanded = list(tensor.shape)
        expanded[batch_dim] = batch
        tensor = tensor.expand(*expanded)
    view = [1] * tensor.ndim
    view[batch_dim], view[seq_dim] = batch, indices.shape[1]
    target = list(tensor.shape)
    target[seq_dim] = indices.shape[1]
    return tensor.gather(seq_dim, indices.view(view).expand(*target))


def gather_positions(position_ids: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Keep original position ids: (B, n) / (1, n) or multi-row M-RoPE (R, B, n) ids."""
    return gather_sequence(position_ids, indices, seq_dim=-1)
