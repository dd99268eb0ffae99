"""FLOPs bookkeeping for an evaluation run: per document, per task, and in total.

The model records each prefill's prompt layout (text before, image tokens, text after) as it runs;
FLOPs come from :func:`fastv.measure.flops`, so a results file reports the same numbers as
``fastv flops``. Task metrics read the current run's per-document entries (``flops_pct``), which is
how "accuracy X at Y% FLOPs" lands in lmms-eval's own results table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from fastv.config import FastVConfig
from fastv.families import family_for
from fastv.measure import Layout, flops

# FastV(k=1, ratio=0) prunes nothing: the way to count a baseline with the same function.
_NO_PRUNING = FastVConfig(k=1, ratio=0.0)


def layouts(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> list[Layout]:
    """Each row's (before, image, after) token counts, padding excluded; image tokens found as the core does."""
    prunable = family_for(model).prunable_mask(model, input_ids)
    valid = torch.ones_like(prunable) if attention_mask is None else attention_mask.bool()
    out = []
    for is_img, ok in zip(prunable, valid, strict=True):
        img = is_img[ok]
        n, n_img = int(img.numel()), int(img.sum())
        before = int(img.long().argmax()) if n_img else n
        out.append(Layout(before=before, image=n_img, after=n - before - n_img))
    return out


@dataclass
class Flops:
    """Prefill FLOPs of the language model (exact matmul count) and the paper's Eq. 5, unpruned vs pruned."""

    baseline: int = 0
    pruned: int = 0
    eq5_baseline: float = 0.0
    eq5_pruned: float = 0.0
    prompts: int = 0
    image_tokens: int = 0
    kept_image_tokens: int = 0

    def add(self, other: Flops) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def pct(self) -> float:
        """Share of the baseline's prefill FLOPs that remain, in percent."""
        return 100.0 * self.pruned / self.baseline if self.baseline else 100.0

    @property
    def eq5_pct(self) -> float:
        return 100.0 * self.eq5_pruned / self.eq5_baseline if self.eq5_baseline else 100.0


def count(model: nn.Module, layout: Layout, config: FastVConfig | None) -> Flops:
    """FLOPs of one prompt under ``config`` (None: unpruned)."""
    report = flops(model, layout, config or _NO_PRUNING)
    kept = layout.image - (config or _NO_PRUNING).n_dropped(layout.image)
    return Flops(
        baseline=report.exact_llm_baseline,
        pruned=report.exact_llm_fastv,
        eq5_baseline=report.eq5_baseline,
        eq5_pruned=report.eq5_fastv,
        prompts=1,
        image_tokens=layout.image,
        kept_image_tokens=kept,
    )


@dataclass
class Ledger:
    """One evaluation run: FLOPs keyed by (task, doc_id); several requests of one doc add up."""

    docs: dict[tuple[str, int], Flops] = field(default_factory=dict)

    def record(self, task: str, doc_id: int, item: Flops) -> None:
        self.docs.setdefault((task, int(doc_id)), Flops()).add(item)

    def total(self, tasks: Iterable[str] | None = None) -> Flops:
        wanted = None if tasks is None else set(tasks)
        out = Flops()
        for (task, _), item in self.docs.items():
            if wanted is None or task in wanted:
                out.add(item)
        return out

    def tasks(self) -> list[str]:
        return sorted({task for task, _ in self.docs})

    def across_ranks(self) -> Ledger:
        """Every rank's documents in one ledger under data-parallel evaluation (torchrun / accelerate
        launch: each rank sees a shard), so run-level figures equal a single process's. A collective:
        every rank must call it (lmms-eval calls the model's ``clean`` on every rank)."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        shards: list[dict | None] = [None] * dist.get_world_size()
        dist.all_gather_object(shards, self.docs)
        merged = Ledger()
        for shard in shards:
            for (task, doc_id), item in shard.items():
                merged.record(task, doc_id, item)
        return merged


_CURRENT = Ledger()


def current() -> Ledger:
    """The ledger of the latest (or running) evaluation in this process."""
    return _CURRENT


def start_run() -> Ledger:
    """A fresh ledger; the model calls this on its first request of each evaluation."""
    global _CURRENT
    _CURRENT = Ledger()
    return _CURRENT


def doc_flops(task: str, doc_id: int) -> Flops | None:
    """What the current run recorded for one document (None if the model did not record it)."""
    return _CURRENT.docs.get((task, int(doc_id)))
