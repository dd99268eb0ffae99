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
        caption="Eq.5 f(n) = 4nd²+2n²d+2ndm per layer (f(n) G: one layer, 1e9 MACs), R on image tokens (img) "
        "or on all n tokens (all). "
        "exact = matmul FLOPs of the decoder + lm_head (last position); +vis adds vision tower and projector.",
    )
    for col in ("setting", "n = b+i+a", "n_hat", "f(n) G", "Eq.5 img", "Eq.5 all", "paper", "exact", "exact+vis"):
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
            f"{r.eq5_one_layer / 1e9:.1f}",
            _pct(r.eq5_ratio),
            _pct(r.eq5_ratio_all_tokens),
            _pct(paper) if paper is not None else "-",
            _pct(r.exact_ratio),
            _pct(r.exact_ratio_with_vision) if r.vision else "n/a",  # a vision tower it cannot count
            f"{r.exact_llm_baseline / 1e12:.2f}→{r.exact_llm_fastv / 1e12:.2f}",
            f"{r.vision_total / 1e12:.3f}" if r.vision else "n/a",
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


def _x(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}x"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{1000 * value:.1f}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def bench_tables(result: Any) -> list[Table]:
    """Two tables (prefill and memory; decode and generate): medians over repeats, (min) in brackets,
    speedups = medians of per-repeat paired baseline/FastV ratios."""
    b = result.batch_size
    head = f"{result.description}; prompt {'+'.join(map(str, result.layout))} x batch {b}; {result.device}"
    rows = [(v, v.to_dict(b, result.short_tokens, result.long_tokens)) for v in result.variants]
    pre = Table(
        title=f"Prefill: {head}",
        caption=f"median of {result.repeats} interleaved repeats (min); speedup = median of paired baseline/FastV "
        "ratios; predicted = 1 / exact-FLOPs ratio (vision included).",
    )
    for col in (
        "setting",
        "n→n_hat",
        "prefill s",
        "speedup",
        "FLOPs-predicted",
        "meas/pred",
        "tok/s",
        "rank % prefill",
        "peak Δ MiB",
        "KV MiB (=formula)",
    ):
        pre.add_column(col, justify="right", no_wrap=True)
    for v, d in rows:
        speed, pred = d["prefill_s_speedup"], v.predicted_prefill_speedup
        share = d["rank_share_of_prefill"]
        match = "✓" if d["kv_cache_matches_formula"] else f"✗ {v.kv_bytes_formula / 2**20:.1f}"
        pre.add_row(
            v.label,
            f"{v.n}→{v.n_hat}",
            f"{_s(d['prefill_s_median'])} ({_s(d['prefill_s_min'])})",
            _x(speed),
            _x(pred),
            "-" if speed is None or v.fastv is None else f"{speed / pred:.2f}",
            "-" if d["prefill_tokens_per_s"] is None else f"{d['prefill_tokens_per_s']:.0f}",
            "-" if share is None else f"{100 * share:.2f}%",
            "-" if d["peak_delta_bytes_median"] is None else f"{d['peak_delta_bytes_median'] / 2**20:.0f}",
            f"{v.kv_bytes_measured / 2**20:.1f} {match}",
        )
    dec = Table(
        title=f"Decode and generate: {head}",
        caption=f"decode = median of {result.decode_steps} single-token steps after the prefill; bytes-predicted = "
        "(weights + KV cache) read per step, baseline / FastV; gen N = generate() wall time for N new tokens.",
    )
    cols = ["setting", "decode ms/tok", "speedup", "bytes-predicted", "tok/s"]
    if result.short_tokens:
        cols.append(f"gen {result.short_tokens} s")
    if result.long_tokens:
        cols += [f"gen {result.long_tokens} s", f"gen {result.long_tokens} tok/s"]
    for col in cols:
        dec.add_column(col, justify="right", no_wrap=True)
    for v, d in rows:
        short, long_ = d["gen_short_s_median"], d["gen_long_s_median"]
        cells = [
            v.label,
            f"{_ms(d['decode_token_s_median'])} ({_ms(d['decode_token_s_min'])})",
            _x(d["decode_token_s_speedup"]),
            _x(v.predicted_decode_speedup_bytes),
            "-" if d["decode_tokens_per_s"] is None else f"{d['decode_tokens_per_s']:.1f}",
        ]
        if result.short_tokens:
            cells.append(_s(short) + ("" if v.fastv is None or short is None else f" ({_x(d['gen_short_s_speedup'])})"))
        if result.long_tokens:
            cells.append(_s(long_) + ("" if v.fastv is None or long_ is None else f" ({_x(d['gen_long_s_speedup'])})"))
            cells.append("-" if d["gen_long_tokens_per_s"] is None else f"{d['gen_long_tokens_per_s']:.1f}")
        dec.add_row(*cells)
    return [pre, dec]


def sweep_table(results: list[Any]) -> Table:
    """One row per (batch size, FastV setting): where decode gets faster and where it does not."""
    table = Table(
        title="Decode regime: per-token decode speedup vs batch size",
        caption="weights = bytes read per decode step; KV MiB and decode ms per token: baseline→FastV; KV share = baseline KV / (KV + weights); × = median paired speedup; predicted = bytes read per step.",
    )
    for col in (
        "batch",
        "n",
        "setting",
        "weights MiB",
        "KV MiB",
        "KV share",
        "decode ms",
        "decode ×",
        "predicted ×",
        "prefill ×",
    ):
        table.add_column(col, justify="right", no_wrap=True)
    for r in results:
        base = r.baseline
        share = base.kv_bytes_measured / (base.kv_bytes_measured + r.decode_weight_bytes)
        for v in r.variants[1:]:
            table.add_row(
                str(r.batch_size),
                str(v.n),
                v.label,
                f"{r.decode_weight_bytes / 2**20:.0f}",
                f"{base.kv_bytes_measured / 2**20:.0f}→{v.kv_bytes_measured / 2**20:.0f}",
                f"{100 * share:.0f}%",
                f"{_ms(base.stat('decode_token_s'))}→{_ms(v.stat('decode_token_s'))}",
                _x(v.speedup("decode_token_s")),
                _x(v.predicted_decode_speedup_bytes),
                _x(v.speedup("prefill_s")),
            )
    return table
