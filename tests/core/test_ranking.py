"""Ranking scores computed from queries/keys equal full softmax attention maps."""

from __future__ import annotations

import pytest
import torch

import fastv.core.ranking as ranking
from fastv.core.ranking import last_token_scores, mean_query_scores, random_scores


def _full_attention(queries, keys, scaling, valid):
    """(B, n, n) head-averaged causal attention with repeated GQA keys: the plain definition."""
    groups = queries.shape[1] // keys.shape[1]
    keys = keys.repeat_interleave(groups, dim=1)
    logits = queries @ keys.transpose(-1, -2) * scaling
    n = queries.shape[2]
    allowed = torch.ones(n, n, dtype=torch.bool).tril()[None, None] & valid[:, None, None, :]
    logits = logits.masked_fill(~allowed, float("-inf"))
    return logits.softmax(-1).nan_to_num(0.0).mean(dim=1)


@pytest.fixture
def qkv():
    generator = torch.Generator().manual_seed(0)
    queries = torch.randn(2, 8, 30, 16, generator=generator)
    keys = torch.randn(2, 2, 30, 16, generator=generator)
    valid = torch.ones(2, 30, dtype=torch.bool)
    valid[1, :7] = False  # left padding on sample 1
    return queries, keys, valid


def test_last_token_scores_equal_the_last_row_of_full_attention(qkv):
    queries, keys, valid = qkv
    expected = _full_attention(queries, keys, 0.25, valid)[:, -1]
    got = last_token_scores(queries[:, :, -1:], keys, 0.25, valid)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.all(got[1, :7] == 0)


@pytest.mark.parametrize("block_bytes", [1, 4 * 2 * 8 * 30 * 7, 2**30])
def test_mean_scores_equal_full_attention_mean_in_any_block_size(qkv, block_bytes):
    queries, keys, valid = qkv
    full = _full_attention(queries, keys, 0.25, valid)
    expected = (full * valid[:, :, None]).sum(dim=1) / valid.sum(dim=1, keepdim=True)
    got = mean_query_scores(queries, keys, 0.25, valid, block_bytes=block_bytes)
    assert torch.allclose(got, expected, atol=1e-6)


def test_mean_scores_never_hold_more_than_one_block(qkv, monkeypatch):
    queries, keys, valid = qkv
    seen = []
    original = ranking._probabilities

    def spy(*args, **kwargs):
        probabilities = original(*args, **kwargs)
        seen.append(probabilities.numel() * probabilities.element_size())
        return probabilities

    monkeypatch.setattr(ranking, "_probabilities", spy)
    budget = 4 * 2 * 8 * 30 * 5  # five full query rows' worth of scores
    mean_query_scores(queries, keys, 0.25, valid, block_bytes=budget)
    assert seen and max(seen) <= budget
    assert 1 < len(seen) < 6  # causal rows see fewer keys, so blocks take more rows than 5


def test_random_scores_depend_only_on_seed_and_the_samples_own_tokens():
    ids = torch.tensor([[0, 0, 5, 6, 7, 8], [3, 4, 5, 6, 7, 8], [0, 0, 5, 6, 7, 8]])
    valid = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    scores = random_scores(ids, valid, seed=5)
    assert torch.equal(scores[0], scores[2])  # identical prompts, identical draws
    assert torch.equal(scores[0, :2], torch.zeros(2))  # padding scores nothing
    alone = random_scores(ids[:1, 2:], valid[:1, 2:], seed=5)  # the same sample without padding, alone
    assert torch.equal(scores[0, 2:], alone[0])
    assert not torch.equal(scores[1, 2:], scores[0, 2:])  # other tokens, another draw
    assert torch.equal(scores, random_scores(ids, valid, seed=5))
    assert not torch.equal(scores, random_scores(ids, valid, seed=6))


def _masked_attention(queries, keys, scaling, valid, window=None, blocks=None, softcap=None):
    """Full attention under a sliding window, bidirectional blocks and soft-capping, written out plainly."""
    groups = queries.shape[1] // keys.shape[1]
    keys = keys.repeat_interleave(groups, dim=1)
    logits = queries @ keys.transpose(-1, -2) * scaling
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    n = queries.shape[2]
    q, k = torch.arange(n)[:, None], torch.arange(n)[None, :]
    allowed = (k <= q)[None].expand(queries.shape[0], n, n).clone()
    if blocks is not None:
        allowed |= (blocks[:, :, None] == blocks[:, None, :]) & (blocks[:, :, None] >= 0)
    if window is not None:
        allowed &= (k > q - window)[None]
    allowed = allowed[:, None] & valid[:, None, None, :]
    return logits.masked_fill(~allowed, float("-inf")).softmax(-1).nan_to_num(0.0).mean(dim=1)


@pytest.mark.parametrize("window", [None, 1, 6])
@pytest.mark.parametrize("softcap", [None, 2.0])
def test_window_blocks_and_softcap_follow_the_layer_mask(qkv, window, softcap):
    queries, keys, valid = qkv
    blocks = torch.full((2, 30), -1)
    blocks[:, 10:18] = 0
    blocks[:, 20:25] = 1
    full = _masked_attention(queries, keys, 0.25, valid, window, blocks, softcap)
    expected_mean = (full * valid[:, :, None]).sum(dim=1) / valid.sum(dim=1, keepdim=True)
    got_mean = mean_query_scores(
        queries, keys, 0.25, valid, block_bytes=4 * 2 * 8 * 30 * 4, window=window, blocks=blocks, softcap=softcap
    )
    assert torch.allclose(got_mean, expected_mean, atol=1e-6)
    got_last = last_token_scores(queries[:, :, -1:], keys, 0.25, valid, window=window, softcap=softcap)
    assert torch.allclose(got_last, full[:, -1], atol=1e-6)
    if window is not None:
        assert torch.all(got_last[:, : 30 - window] == 0)
