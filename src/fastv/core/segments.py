"""Segment ids for per-image budgets: which image (or video frame) each prunable token belongs to."""

from __future__ import annotations

from collections.abc import Callable

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
    """Split run ``s`` of each row into ``parts[b][s]`` consecutive pieces (e.g. video frames).

    segments: (B, n) from ``contiguous_runs``; parts: (B, S) long, 1 to leave a run whole. Pieces get
    ``len // parts`` tokens each and the last one takes the remainder (e.g. a video's trailing newline
    token). Returns renumbered (B, n) segment ids.
    """
    out = torch.full_like(segments, -1)
    for b, row in enumerate(segments):
        next_id = 0
        for s in range(int(row.max()) + 1 if bool((row >= 0).any()) else 0):
            where = (row == s).nonzero().squeeze(1)
            pieces = min(max(int(parts[b, s]) if s < parts.shape[1] else 1, 1), where.numel())
            size = where.numel() // pieces
            piece = (torch.arange(where.numel(), device=row.device) // size).clamp(max=pieces - 1)
            out[b, where] = next_id + piece
            next_id += pieces
    return out


def grid_frame_segments(labels: torch.Tensor, video_label: int, video_grid_thw: torch.Tensor) -> torch.Tensor:
    """``frame_segments`` with each video's frame count read from the processor's ``video_grid_thw`` (its
    temporal patches, in the order the model consumes its videos)."""
    temporal = [int(t) for t in video_grid_thw[:, 0]]
    return frame_segments(labels, video_label, lambda i, _: temporal[i] if i < len(temporal) else 1)


def frame_segments(labels: torch.Tensor, video_label: int, frames: Callable[[int, int], int]) -> torch.Tensor:
    """Runs of ``labels`` as segments, each run labelled ``video_label`` split into its frames.

    labels: (B, n) long, the placeholder id at prunable positions and -1 elsewhere. frames(i, length)
    gives the frame count of the i-th video run (row-major order: sample, then position, the order
    in which VLMs consume their video inputs) from its token count.
    """
    runs = contiguous_runs(labels)
    n_runs = int(runs.max()) + 1 if runs.numel() else 0
    parts = torch.ones(runs.shape[0], n_runs, dtype=torch.long)
    video_index = 0
    for b, row in enumerate(runs):
        for s in range(n_runs):
            where = (row == s).nonzero()
            if where.numel() and int(labels[b, where[0, 0]]) == video_label:
                parts[b, s] = frames(video_index, where.numel())
                video_index += 1
    return split_runs(runs, parts)
