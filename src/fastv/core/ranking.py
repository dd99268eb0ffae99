"""Scores for ranking image tokens, computed from queries and keys only.

Attention backends such as SDPA and FlashAttention never return attention weights, so FastV
recomputes just the rows it needs. Every function returns a ``(batch, seq)`` float32 score per key,
averaged over heads; only the relative order within a sample matters.
"""

from __future__ import annotations

import hashlib
import math

import torch

# Upper bound on the float32 score block the "mean" ranker holds at once (bytes). Scores are masked and
# softmaxed in place, so this block is the ranker's peak transient memory, plus O(n) per sample.
MEAN_RANK_BLOCK_BYTES = 64 * 2**20


def _grouped(queries: torch.Tensor, n_kv_heads: int) -> torch.Tensor:
    """View (B, H, q, d) queries as (B, H_kv, H/H_kv, q, d) so that GQA keys need no repeat."""
    batch, n_heads, q_len, head_dim = queries.shape
    if n_heads % n_kv_heads:
        raise ValueError(f"{n_heads} query heads are not a multiple of {n_kv_heads} key/value heads.")
    return queries.view(batch, n_kv_heads, n_heads // n_kv_heads, q_len, head_dim)


def _probabilities(
    queries: torch.Tensor, keys: torch.Tensor, scaling: float, allowed: torch.Tensor, softcap: float | None = None
) -> torch.Tensor:
    """Softmax attention of grouped queries over keys, (B, H_kv, G, q, n), in float32.

    Every step after the matmul works in place, so the block of scores is the only large tensor alive.
    """
    logits = torch.einsum("bhgqd,bhkd->bhgqk", queries.float(), keys.float()).mul_(scaling)
    if softcap is not None:  # Gemma-style attention logit soft-capping
        logits.div_(softcap).tanh_().mul_(softcap)
    logits.masked_fill_(~allowed, torch.finfo(logits.dtype).min)
    logits.sub_(logits.amax(dim=-1, keepdim=True)).exp_()
    return logits.div_(logits.sum(dim=-1, keepdim=True))


def _visible(
    query_index: torch.Tensor,
    n: int,
    window: int | None,
    blocks: torch.Tensor | None,
) -> torch.Tensor:
    """(B or 1, q, n) bool: which keys each query sees, as the model's own mask rules say.

    Causal; within ``window`` positions (sliding-window layers: ``q - window < k``); and, where
    ``blocks`` ((B, n) long, -1 outside) puts query and key in one image block, bidirectional (Gemma 3).
    """
    key_index = torch.arange(n, device=query_index.device)
    causal = key_index[None, :] <= query_index[:, None]
    if blocks is not None:
        q_blocks = blocks[:, query_index]
        same = (q_blocks[:, :, None] == blocks[:, None, :]) & (q_blocks[:, :, None] >= 0)
        causal = causal[None] | same
    else:
        causal = causal[None]
    if window is not None:
        causal = causal & (key_index[None, :] > query_index[:, None] - window)[None]
    return causal


def last_token_scores(
    last_query: torch.Tensor,
    keys: torch.Tensor,
    scaling: float,
    key_valid: torch.Tensor,
    window: int | None = None,
    softcap: float | None = None,
) -> torch.Tensor:
    """The last prompt token's attention row, head-averaged (the original FastV code's rule).

    last_query: (B, H, 1, d); keys: (B, H_kv, n, d); key_valid: (B, n) bool (False for padding).
    window: the ranking layer's sliding window (keys further back get no attention), or None.
    """
    grouped = _grouped(last_query, keys.shape[1])
    n = keys.shape[2]
    allowed = key_valid[:, None, None, None, :]
    if window is not None:
        last = torch.tensor([n - 1], device=keys.device)
        allowed = allowed & _visible(last, n, window, None)[:, None, None]
    probs = _probabilities(grouped, keys, scaling, allowed, softcap)
    return probs.mean(dim=(1, 2))[:, 0, :]


def mean_query_scores(
    queries: torch.Tensor,
    keys: torch.Tensor,
    scaling: float,
    key_valid: torch.Tensor,
    block_bytes: int | None = None,
    window: int | None = None,
    blocks: torch.Tensor | None = None,
    softcap: float | None = None,
) -> torch.Tensor:
    """Attention each key receives, averaged over every real prompt query and head (the paper's text).

    Queries are processed in blocks so that no (n x n) score matrix exists at once: memory is bounded
    by ``block_bytes`` (default: the module's ``MEAN_RANK_BLOCK_BYTES``) whatever the prompt length (video prompts reach thousands of tokens).
    queries: (B, H, n, d); keys: (B, H_kv, n, d); key_valid: (B, n) bool. ``window`` (sliding-window
    layer) and ``blocks`` (bidirectional image blocks) follow the ranking layer's own mask.
    """
    block_bytes = MEAN_RANK_BLOCK_BYTES if block_bytes is None else block_bytes
    batch, n_heads, n, _ = queries.shape
    grouped = _grouped(queries, keys.shape[1])
    keys = keys.float()  # once, not per block
    scores_per_block = max(1, block_bytes // (4 * batch * n_heads))  # query rows x keys, per sample and head
    totals = torch.zeros(batch, n, dtype=torch.float32, device=queries.device)
    start = 0
    while start < n:
        # Causal queries [start, stop) see no key at or after stop (image blocks may look ahead): skip those,
        # and size the block so that rows x keys fills the budget (equal blocks also keep the allocator tidy).
        rows = _block_rows(start, n, scores_per_block, causal=blocks is None)
        stop = start + rows
        limit = stop if blocks is None else n
        visible = _visible(torch.arange(start, stop, device=queries.device), n, window, blocks)[..., :limit]
        allowed = visible[:, None, None] & key_valid[:, None, None, None, :limit]
        probs = _probabilities(grouped[:, :, :, start:stop], keys[:, :, :limit], scaling, allowed, softcap)
        row_weight = key_valid[:, start:stop].float()  # padding queries do not vote
        totals[:, :limit] += probs.mul_(row_weight[:, None, None, :, None]).sum(dim=(1, 2, 3)) / n_heads
        del probs  # before the next block is allocated: one block alive at a time
        start = stop
    n_queries = key_valid.sum(dim=1, keepdim=True).clamp(min=1)
    return totals / n_queries


def _block_rows(start: int, n: int, scores_per_block: int, causal: bool) -> int:
    """Query rows from ``start`` whose (rows x visible keys) scores fit the block."""
    if not causal:
        return max(1, min(n - start, scores_per_block // n))
    rows = (math.isqrt(start * start + 4 * scores_per_block) - start) // 2  # rows * (start + rows) <= budget
    return max(1, min(n - start, rows))


def random_scores(input_ids: torch.Tensor, valid: torch.Tensor, seed: int) -> torch.Tensor:
    """Seeded uniform scores, the random-dropping ablation: each sample draws from a generator seeded by
    (seed, its own tokens), so its kept set does not depend on batch composition, padding or row.

    input_ids, valid: (B, n); returns (B, n) float32 scores on their device (0 at padding).
    """
    ids, mask = input_ids.detach().cpu(), valid.detach().cpu()
    scores = torch.zeros(mask.shape, dtype=torch.float32)
    for row in range(mask.shape[0]):
        tokens = ids[row][mask[row]]
        generator = torch.Generator(device="cpu").manual_seed(sample_seed(seed, tokens))
        scores[row, mask[row]] = torch.rand(tokens.numel(), generator=generator)
    return scores.to(valid.device)


def sample_seed(seed: int, tokens: torch.Tensor) -> int:
    """A 63-bit seed from (seed, token ids), the same in every process (unlike ``hash``)."""
    digest = hashlib.blake2b(seed.to_bytes(8, "little"), digest_size=8)
    digest.update(tokens.to(torch.int64).numpy().tobytes())
    return int.from_bytes(digest.digest(), "little") & (2**63 - 1)
