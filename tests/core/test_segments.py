"""Segment ids for per-image budgets."""

from __future__ import annotations

import torch

from fastv.core import contiguous_runs, split_runs


def test_runs_split_on_text_and_on_a_change_of_placeholder():
    labels = torch.tensor([[-1, 7, 7, -1, 7, 8, 8, -1], [-1, -1, -1, -1, -1, -1, 9, 9]])
    assert contiguous_runs(labels).tolist() == [[-1, 0, 0, -1, 1, 2, 2, -1], [-1, -1, -1, -1, -1, -1, 0, 0]]


def test_split_runs_cuts_videos_into_frames_and_the_last_frame_takes_the_remainder():
    segments = torch.tensor([[0, 0, -1, 1, 1, 1, 1, 1, 1, -1, 2, 2, 2, 2, 2]])
    parts = torch.tensor([[1, 3, 2]])  # run 2: 5 tokens in 2 frames -> 2 + 3 (a trailing newline token)
    assert split_runs(segments, parts).tolist() == [[0, 0, -1, 1, 1, 2, 2, 3, 3, -1, 4, 4, 5, 5, 5]]


def test_rows_without_segments_stay_empty():
    segments = torch.tensor([[-1, -1, -1]])
    assert split_runs(segments, torch.ones(1, 0, dtype=torch.long)).tolist() == [[-1, -1, -1]]
