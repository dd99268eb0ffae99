"""Attention rows recomputed layer by layer from queries and keys, whatever the attention backend.

SDPA and FlashAttention never return attention weights, and ``output_attentions=True`` would hold
every layer's (heads x n x n) map at once (gigabytes for a video prompt). Instead a pre-hook on each
layer's attention module reads the normed hidden states and position embeddings it is called with,
rebuilds the rotated queries / keys through the family adapter, and takes the softmax for the
selected query rows in blocks, reducing each block at once to what the study needs: per query, the
share of attention each token class receives, and optionally a pooled (bins x bins) attention map.
Memory is one layer's keys plus one (heads x block x n) block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from fastv.families import Family

# Upper bound on one float32 (heads x query block x keys) probability block (bytes).
BLOCK_BYTES = 64 * 2**20


@dataclass
class LayerStats:
    """One layer's reductions: per-query class shares and (optionally) a pooled attention map."""

    shares: torch.Tensor  # (n_queries, n_classes) float64: head-averaged attention per class, rows sum to 1
    pooled: torch.Tensor | None = None  # (bins, bins) mean attention per (query bin, key bin) block


def pool_index(n: int, bins: int) -> torch.Tensor:
    """Bin of each of ``n`` positions when cut into ``bins`` contiguous, nearly equal blocks."""
    return torch.arange(n) * bins // n


class AttentionProbe:
    """Pre-hooks on every attention layer that reduce its attention rows as the forward runs.

    Recurrent layers of a hybrid decoder (linear attention, short convolutions) have no attention
    map: they get no hook and no stats.
    """

    def __init__(
        self,
        family: Family,
        layers: Sequence[nn.Module],
        text_config,
        classes: torch.Tensor,
        n_classes: int,
        query_positions: torch.Tensor,
        map_layers: Sequence[int] = (),
        map_bins: int = 64,
        block_bytes: int = BLOCK_BYTES,
        blocks: torch.Tensor | None = None,
    ) -> None:
        self.family = family
        self.layers = list(layers)
        self.classes = classes  # (n,) long class per position
        self.n_classes = n_classes
        self.query_positions = query_positions
        self.map_layers = set(map_layers)
        self.map_bins = map_bins
        self.block_bytes = block_bytes
        self.blocks = blocks  # (n,) bidirectional image block per position (-1 elsewhere), or None
        self.attending = [i for i in range(len(self.layers)) if not family.is_recurrent(i, text_config)]
        self.windows = {i: family.sliding_window(self.layers[i], text_config) for i in self.attending}
        self.stats: dict[int, LayerStats] = {}
        self._handles: list = []

    def __enter__(self) -> AttentionProbe:
        for idx in self.attending:
            attention = self.family.attention(self.layers[idx])
            self._handles.append(attention.register_forward_pre_hook(self._hook(idx), with_kwargs=True))
        return self

    def __exit__(self, *_) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, idx: int):
        def hook(attention: nn.Module, args: tuple, kwargs: dict) -> None:
            hidden = kwargs.get("hidden_states", args[0] if args else None)
            position_embeddings = kwargs.get("position_embeddings")
            if position_embeddings is None and len(args) > 1:
                position_embeddings = args[1]
            with torch.no_grad():
                self.stats[idx] = self._reduce(idx, attention, hidden, position_embeddings)

        return hook

    def _reduce(self, idx: int, attention: nn.Module, hidden: torch.Tensor, position_embeddings) -> LayerStats:
        family = self.family
        keys = family.keys(attention, hidden, position_embeddings).float()  # (1, H_kv, n, d)
        n = keys.shape[-2]
        device = keys.device
        one_hot = torch.nn.functional.one_hot(self.classes.to(device), self.n_classes).float()  # (n, C)
        shares = self._rows(idx, attention, hidden, position_embeddings, keys, self.query_positions.to(device))
        shares = [probs @ one_hot for probs in shares]
        stats = LayerStats(torch.cat(shares).double().cpu())
        if idx in self.map_layers:
            stats.pooled = self._pooled_map(idx, attention, hidden, position_embeddings, keys, n)
        return stats

    def _rows(self, idx, attention, hidden, position_embeddings, keys, positions: torch.Tensor):
        """Head-averaged attention rows (q_block, n) for ``positions``, one query block at a time."""
        family = self.family
        n = keys.shape[-2]
        n_heads = getattr(getattr(attention, "config", None), "num_attention_heads", None) or keys.shape[1]
        rows_per_block = max(1, self.block_bytes // (4 * n_heads * n))
        key_index = torch.arange(n, device=keys.device)
        window = self.windows[idx]
        cos, sin = position_embeddings
        scaling = family.scaling(attention)
        softcap = family.softcap(attention) if hasattr(family, "softcap") else None
        blocks = None if self.blocks is None else self.blocks.to(keys.device)
        for start in range(0, positions.numel(), rows_per_block):
            rows = positions[start : start + rows_per_block]
            queries = family.queries(
                attention, hidden[:, rows], (cos.index_select(-2, rows), sin.index_select(-2, rows))
            ).float()  # (1, H, q, d)
            batch, heads, q_len, head_dim = queries.shape
            grouped = queries.view(batch, keys.shape[1], heads // keys.shape[1], q_len, head_dim)
            logits = torch.einsum("bhgqd,bhkd->bhgqk", grouped, keys) * scaling
            if softcap is not None:  # Gemma-style logit soft-capping, as the model applies it
                logits = torch.tanh(logits / softcap) * softcap
            allowed = key_index[None, :] <= rows[:, None]
            if blocks is not None:  # image blocks that attend bidirectionally (Gemma 3)
                same = (blocks[rows][:, None] == blocks[None, :]) & (blocks[rows][:, None] >= 0)
                allowed = allowed | same
            if window is not None:
                allowed &= key_index[None, :] > rows[:, None] - window
            logits = logits.masked_fill(~allowed, torch.finfo(logits.dtype).min)
            yield logits.softmax(dim=-1).mean(dim=(1, 2))[0]  # (q, n)

    def _pooled_map(self, idx, attention, hidden, position_embeddings, keys, n: int) -> torch.Tensor:
        bins = min(self.map_bins, n)
        index = pool_index(n, bins).to(keys.device)
        counts = torch.bincount(index, minlength=bins).double()
        total = torch.zeros(bins, bins, dtype=torch.float64, device=keys.device)
        positions = torch.arange(n, device=keys.device)
        done = 0
        for probs in self._rows(idx, attention, hidden, position_embeddings, keys, positions):
            q_len = probs.shape[0]
            by_key = torch.zeros(q_len, bins, dtype=torch.float64, device=keys.device)
            by_key.index_add_(1, index, probs.double())
            total.index_add_(0, index[done : done + q_len], by_key)
            done += q_len
        return (total / counts[:, None] / counts[None, :]).cpu()
