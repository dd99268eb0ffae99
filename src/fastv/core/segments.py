"""Segment ids for per-image budgets: which image (or video frame) each prunable token belongs to."""

from __future__ import annotations

import torch


def contiguous_runs(labels: torch.Tensor) -> torch.Tensor:
    """Number the runs of equal non-negative labels in each row: (B, n) long, -1 outside runs.

    labels: (B, n) long, e.g. the token id at image / video positions and -1 elsewhere. A run ends
    where the label changes, so an image directly followed by a video is two segments.
    """
    starts = labels >= 0
    previous = torch.nn.functional.pad(labels, (1, 0), value=-1)[:, :-1]
    starts &= labels != previous
    ids = torch.cumsum(starts.long(), dim=1) - 1
    return torch.where(labels >= 0, ids, torch.full_like(ids, -1))


def split_runs(segments: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
    """Split run ``s`` of each row into ``parts[b][s]`` equal consecutive pieces (e.g. video frames).

    segments: (B, n) from ``contiguous_runs``; parts: (B, S) long, 1 to leave a run whole. A run whose
    length is not a multiple of its parts is left whole. Returns renumbered (B, n) segment ids.
    """
    out = torch.full_like(segments, -1)
    for b, row in enumerate(segments):
        next_id = 0
        for s in range(int(row.max()) + 1 if bool((row >= 0).any()) else 0):
            where = (row == s).nonzero().squeeze(1)
            pieces = int(parts[b, s]) if s < parts.shape[1] else 1
            if pieces < 1 or where.numel() % pieces:
                pieces = 1
            size = where.numel() // pieces
            out[b, where] = next_id + torch.arange(where.numel(), device=row.device) // size
            next_id += pieces
    return out
