from __future__ import annotations

import torch

from fastv.core import gather_positions, gather_sequence


def test_gather_sequence_expands_a_shared_batch_and_keeps_rows():
    cos = torch.arange(1 * 6 * 4, dtype=torch.float32).view(1, 6, 4)
    indices = torch.tensor([[0, 2, 5], [1, 1, 3]])
    got = gather_sequence(cos, indices, seq_dim=-2)
    assert got.shape == (2, 3, 4)
    assert torch.equal(got[0], cos[0, [0, 2, 5]])
    assert torch.equal(got[1], cos[0, [1, 1, 3]])


def test_gather_positions_keeps_every_mrope_row():
    position_ids = torch.arange(3 * 2 * 5).view(3, 2, 5)  # (t/h/w rows, batch, seq)
    indices = torch.tensor([[0, 4], [2, 3]])
    got = gather_positions(position_ids, indices)
    assert got.shape == (3, 2, 2)
    for row in range(3):
        assert got[row, 0].tolist() == position_ids[row, 0, [0, 4]].tolist()
        assert got[row, 1].tolist() == position_ids[row, 1, [2, 3]].tolist()
