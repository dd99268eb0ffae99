"""plan_keep: which positions survive, as properties over random layouts."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastv.core import plan_keep


@st.composite
def layouts(draw):
    batch = draw(st.integers(1, 4))
    n = draw(st.integers(1, 40))
    rows_valid, rows_prunable, drops = [], [], []
    for _ in range(batch):
        pad = draw(st.integers(0, n - 1))
        valid = [False] * pad + [True] * (n - pad)
        prunable = [v and draw(st.booleans()) for v in valid]
        rows_valid.append(valid)
        rows_prunable.append(prunable)
        drops.append(draw(st.integers(0, sum(prunable))))
    seed = draw(st.integers(0, 2**16))
    scores = torch.rand(batch, n, generator=torch.Generator().manual_seed(seed))
    return scores, torch.tensor(rows_prunable), torch.tensor(rows_valid), drops


@settings(max_examples=200, deadline=None)
@given(layouts())
def test_plan_keeps_every_real_non_candidate_and_drops_exactly_the_lowest(layout):
    scores, prunable, valid, drops = layout
    plan = plan_keep(scores, prunable, valid, drops)
    for b in range(scores.shape[0]):
        kept = plan.kept(b)
        assert torch.all(kept[1:] > kept[:-1])  # sorted, no repeats
        assert kept.numel() == int(valid[b].sum()) - drops[b]
        kept_mask = torch.zeros_like(valid[b])
        kept_mask[kept] = True
        assert torch.all(kept_mask[valid[b] & ~prunable[b]])  # text / system tokens always kept
        assert not torch.any(kept_mask[~valid[b]])  # padding never "kept"
        dropped = valid[b] & ~kept_mask
        survivors = scores[b][prunable[b] & kept_mask]
        if drops[b] and survivors.numel():
            assert scores[b][dropped].max() <= survivors.min()
        # left padding: real slots are a suffix
        slots = plan.valid[b]
        assert torch.equal(slots, torch.sort(slots.int(), stable=True).values.bool())
    assert plan.length == max(int(valid[b].sum()) - drops[b] for b in range(scores.shape[0]))


def test_ties_drop_earliest_positions_first():
    scores = torch.zeros(1, 6)
    prunable = torch.tensor([[False, True, True, True, True, False]])
    plan = plan_keep(scores, prunable, torch.ones(1, 6, dtype=torch.bool), [2])
    assert plan.kept(0).tolist() == [0, 3, 4, 5]


def test_cannot_drop_more_than_the_candidates():
    import pytest

    with pytest.raises(ValueError, match="cannot drop 3 of 2"):
        plan_keep(torch.zeros(1, 3), torch.tensor([[True, True, False]]), torch.ones(1, 3, dtype=torch.bool), [3])
