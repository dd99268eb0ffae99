"""Rich tables for FLOPs reports and presets (terminal output of ``fastv flops`` / ``fastv bench``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

from fastv.measure.flops import FlopsReport
from fastv.measure.paper import table1_ratio
from fastv.measure.presets import Preset


def print_rich(*renderables: Any) -> None:
    console = Console(width=max(Console().width, 140))
    for r in renderables:
        console.print(r)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def flops_table(reports: Iterable[FlopsReport]) -> Table:
    reports = list(reports)
    title = f"FastV prefill FLOPs, {reports[0].model}" if reports else "FastV prefill FLOPs"
    table = Table(
        title=title,
        caption="Eq.5 = 4nd²+2n²d+2ndm per layer, R on image tokens (img) or on all n tokens (all). "
        "exact = matmul FLOPs of the decoder + lm_head (last position); +vis adds vision tower and projector.",
    )
    for col in ("setting", "n = b+i+a", "n_hat", "Eq.5 img", "Eq.5 all", "paper", "exact", "exact+vis"):
        table.add_column(col, justify="right", no_wrap=True)
    for col in ("LLM TFLOPs", "vis TFLOPs", "KV fp16 MiB"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in reports:
        lay = r.layouts[0]
        paper = table1_ratio(r.model, r.fastv.k, r.fastv.ratio) if r.fastv.keep is None else None
        batch = f" x{len(r.layouts)}" if len(r.layouts) > 1 else ""
        table.add_row(
            f"K{r.fastv.k} " + (f"keep {r.fastv.keep}" if r.fastv.keep is not None else f"R{100 * r.fastv.ratio:g}"),
            f"{lay}{batch}",
            str(r.n_hat[0]),
            _pct(r.eq5_ratio),
            _pct(r.eq5_ratio_all_tokens),
            _pct(paper) if paper is not None else "-",
            _pct(r.exact_ratio),
            _pct(r.exact_ratio_with_vision),
            f"{r.exact_llm_baseline / 1e12:.2f}→{r.exact_llm_fastv / 1e12:.2f}",
            f"{r.vision_total / 1e12:.3f}",
            f"{r.kv_cache_bytes_fp16[0] / 2**20:.0f}→{r.kv_cache_bytes_fp16[1] / 2**20:.0f}",
        )
    return table


def presets_table(presets: Iterable[Preset]) -> Table:
    table = Table(title="Presets (shapes only; no weights)")
    for col in ("name", "L", "d", "m", "heads/kv", "vocab", "image tokens", "layout", "notes"):
        table.add_column(col, overflow="fold")
    for p in presets:
        t = p.text
        table.add_row(
            p.name,
            str(t.layers),
            str(t.hidden),
            str(t.ffn),
            f"{t.heads}/{t.kv_heads}",
            str(t.vocab),
            str(p.layout.image),
            str(p.layout),
            p.notes,
        )
    return table
