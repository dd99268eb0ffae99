"""Which prompt positions survive pruning, per sample, as a left-padded index plan."""

from __future__ import annotations

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


def plan_keep(scores: torch.Tensor, prunable: torch.Tensor, valid: torch.Tensor, n_drop: list[int]) -> KeepPlan:
    """Drop each sample's ``n_drop[b]`` lowest-scoring prunable tokens; keep every other real token.

    scores: (B, n) float; prunable: (B, n) bool (image/video tokens); valid: (B, n) bool (not padding).
    Samples are ranked independently; padding is dropped and re-added on the left.
    """
    batch = scores.shape[0]
    if len(n_drop) != batch:
        raise ValueError(f"n_drop has {len(n_drop)} entries for a batch of {batch}.")
    candidates = prunable & valid
    keep_mask = valid.clone()
    for b in range(batch):
        count = n_drop[b]
        n_candidates = int(candidates[b].sum())
        if count > n_candidates:
            raise ValueError(f"sample {b}: cannot drop {count} of {n_candidates} prunable tokens.")
        if count == 0:
            continue
        ranked = scores[b].float().masked_fill(~candidates[b], float("inf"))
        # Stable sort: ties drop the earliest position first, deterministically on every backend.
        lowest = torch.sort(ranked, stable=True).indices[:count]
        keep_mask[b, lowest] = False
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
