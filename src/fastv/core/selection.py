"""Which prompt positions survive pruning, per sample, as a left-padded index plan."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class KeepPlan:
    """The kept positions of a batch, re-packed with left padding.

    indices: (B, N) long, positions into the full sequence; padding slots repeat a kept index.
    valid: (B, N) bool, False on padding slots.
    """

    indices: torch.Tensor
    valid: torch.Tensor

    @property
    def length(self) -> int:
        return self.indices.shape[1]

    def kept(self, sample: int) -> torch.Tensor:
        """Sorted kept positions of one sample (no padding)."""
        return self.indices[sample][self.valid[sample]]


def segment_drops(segments: torch.Tensor, n_dropped: Callable[[int], int]) -> list[dict[int, int]]:
    """Per sample, ``{segment id: tokens to drop}`` giving every segment (image / frame) its own budget.

    segments: (B, n) long, the segment id of each prunable token and -1 elsewhere.
    """
    drops = []
    for row in segments:
        ids, counts = torch.unique(row[row >= 0], return_counts=True)
        drops.append({int(i): n_dropped(int(c)) for i, c in zip(ids, counts, strict=True)})
    return drops


def plan_keep(
    scores: torch.Tensor,
    prunable: torch.Tensor,
    valid: torch.Tensor,
    n_drop: Sequence[int] | Sequence[dict[int, int]],
    segments: torch.Tensor | None = None,
) -> KeepPlan:
    """Drop each sample's lowest-scoring prunable tokens; keep every other real token.

    scores: (B, n) float; prunable: (B, n) bool (image/video tokens); valid: (B, n) bool (not padding).
    n_drop[b] is the number sample ``b`` drops over all its prunable tokens (one global ranking), or,
    with ``segments`` ((B, n) long, -1 outside segments), a ``{segment id: count}`` dict ranking each
    segment on its own. Samples are ranked independently; padding is dropped and re-added on the left.
    """
    batch = scores.shape[0]
    if len(n_drop) != batch:
        raise ValueError(f"n_drop has {len(n_drop)} entries for a batch of {batch}.")
    candidates = prunable & valid
    keep_mask = valid.clone()
    for b in range(batch):
        if segments is None:
            groups = [(candidates[b], int(n_drop[b]))]
        else:
            groups = [(candidates[b] & (segments[b] == s), count) for s, count in n_drop[b].items()]
        for members, count in groups:
            _drop_lowest(scores[b], members, count, keep_mask[b], b)
    lengths = keep_mask.sum(dim=1)
    width = int(lengths.max()) if batch else 0
    indices = torch.zeros(batch, width, dtype=torch.long, device=scores.device)
    slot_valid = torch.zeros(batch, width, dtype=torch.bool, device=scores.device)
    for b in range(batch):
        kept = keep_mask[b].nonzero().squeeze(1)
        pad = width - kept.numel()
        indices[b, pad:] = kept
        if kept.numel():
            indices[b, :pad] = kept[0]
        slot_valid[b, pad:] = True
    return KeepPlan(indices=indices, valid=slot_valid)


def _drop_lowest(scores: torch.Tensor, members: torch.Tensor, count: int, keep: torch.Tensor, sample: int) -> None:
    """Clear ``keep`` at the ``count`` lowest-scoring ``members`` of one sample (in place)."""
    n_members = int(members.sum())
    if count > n_members:
        raise ValueError(f"sample {sample}: cannot drop {count} of {n_members} prunable tokens.")
    if count == 0:
        return
    ranked = scores.float().masked_fill(~members, float("inf"))
    # Stable sort: ties drop the earliest position first, deterministically on every backend.
    lowest = torch.sort(ranked, stable=True).indices[:count]
    keep[lowest] = False
