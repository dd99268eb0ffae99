"""plan_keep: which positions survive, as properties over random layouts."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastv import FastVConfig
from fastv.core import plan_keep, segment_drops


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


@st.composite
def segmented_layouts(draw):
    """A left-padded batch whose prunable tokens form images (runs) of random sizes."""
    batch = draw(st.integers(1, 3))
    rows = []
    for _ in range(batch):
        sizes = draw(st.lists(st.integers(1, 9), min_size=0, max_size=4))
        layout = []  # segment id per position, -1 for text
        for s, size in enumerate(sizes):
            layout += [-1] * draw(st.integers(0, 2)) + [s] * size
        layout += [-1] * draw(st.integers(1, 3))
        rows.append(layout)
    width = max(len(r) for r in rows)
    segments = torch.tensor([[-1] * (width - len(r)) + r for r in rows])
    valid = torch.tensor([[False] * (width - len(r)) + [True] * len(r) for r in rows])
    ratio = draw(st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.9]))
    scores = torch.rand(batch, width, generator=torch.Generator().manual_seed(draw(st.integers(0, 999))))
    return scores, segments, valid, ratio


@settings(max_examples=150, deadline=None)
@given(segmented_layouts())
def test_per_image_budget_gives_every_image_its_floor_share(layout):
    scores, segments, valid, ratio = layout
    config = FastVConfig(k=1, ratio=ratio, budget="per_image")
    prunable = segments >= 0
    drops = segment_drops(segments, config.n_dropped)
    plan = plan_keep(scores, prunable, valid, drops, segments)
    for b in range(scores.shape[0]):
        kept_mask = torch.zeros_like(valid[b])
        kept_mask[plan.kept(b)] = True
        assert torch.all(kept_mask[valid[b] & ~prunable[b]])
        for s in segments[b][segments[b] >= 0].unique().tolist():
            members = segments[b] == s
            size = int(members.sum())
            assert int((members & kept_mask).sum()) == size - math.floor(ratio * size + 1e-9)
            dropped, survivors = scores[b][members & ~kept_mask], scores[b][members & kept_mask]
            if dropped.numel() and survivors.numel():
                assert dropped.max() <= survivors.min()  # lowest within the image, not globally


def test_per_image_keep_keeps_that_many_of_every_image():
    segments = torch.tensor([[-1, 0, 0, 0, 0, -1, 1, 1, -1, 2, 2, 2, 2, 2, 2, -1]])
    config = FastVConfig(k=1, keep=3, budget="per_image")
    drops = segment_drops(segments, config.n_dropped)
    assert drops == [{0: 1, 1: 0, 2: 3}]
    plan = plan_keep(torch.rand(1, 16), segments >= 0, torch.ones(1, 16, dtype=torch.bool), drops, segments)
    kept_segments = segments[0][plan.kept(0)]
    assert [int((kept_segments == s).sum()) for s in range(3)] == [3, 2, 3]
