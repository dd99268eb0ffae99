"""``fastv doctor``: check that FastV is exact on this machine's torch / transformers / device."""

from __future__ import annotations

import argparse
import json
from typing import Any

from fastv.cli._types import Names, add_device_option

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16"}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "doctor",
        help="Self-check: FastV on tiny models of every family equals the unpatched model and the reference.",
        description="Builds a tiny random-weight model of every supported family from its config (no download) "
        "and checks on your torch / transformers / device: ratio 0 is bit-identical to the unpatched model; a "
        "pruned prefill and 4 cached decode steps equal the independent cache-free reference, and the kept set "
        "equals the one eager attention maps give; remove() restores the model. Exits 1 on any failure.",
    )
    add_device_option(p, help="torch device, e.g. cpu, cuda, cuda:1 (default cpu)")
    p.add_argument(
        "--attn",
        type=Names(_backends),
        default="sdpa,eager,flash_attention_2",
        help="comma-separated attention backends; each is skipped with a reason where unavailable",
    )
    p.add_argument(
        "--family", type=Names(), default=None, help="comma-separated model types (default: every supported family)"
    )
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default float32 on CPU, bfloat16 on GPU")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.set_defaults(func=run)


def _backends() -> tuple[str, ...]:
    from fastv.selfcheck import BACKENDS

    return BACKENDS


def run(args: argparse.Namespace) -> int:
    import torch

    from fastv.selfcheck import doctor

    report = doctor(
        device=args.device,
        attn=args.attn,
        families=args.family,
        dtype=getattr(torch, DTYPES[args.dtype]) if args.dtype else None,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print(report)
    return 0 if report.ok else 1


def _print(report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # CI logs and pipes: do not squeeze the table into 80 columns
        console = Console(width=120)
    console.print("  ".join(f"{key} [bold]{value}[/]" for key, value in report.versions.items()))
    stack = (
        f"transformers {report.versions['transformers']}, torch {report.versions['torch']}, {report.versions['device']}"
    )
    table = Table(title=f"fastv doctor on {stack}: FastV(k=2, ratio=0.5) against the unpatched model and the reference")
    for column in ("family", "backend", "dtype", "ratio 0", "kept set", "max diff", "tolerance", "remove()", "verdict"):
        table.add_column(column, justify="right" if column in ("max diff", "tolerance") else "left")
    for row in report.rows:
        verdict = {"ok": "[green]ok[/]", "FAIL": "[red]FAIL[/]"}.get(row.verdict, f"[dim]{row.verdict}[/]")
        table.add_row(
            row.family,
            row.backend,
            row.dtype,
            _mark(row.ratio_zero_identical, "identical"),
            _mark(row.kept_matches, "equal"),
            "" if row.max_diff is None else f"{row.max_diff:.1e}",
            "" if row.tolerance is None else f"{row.tolerance:.1e}",
            _mark(row.remove_restores, "restores"),
            verdict,
        )
    console.print(table)
    skipped = sorted({(row.backend, row.detail) for row in report.rows if row.verdict == "skipped"})
    for backend, reason in skipped:
        console.print(f"{backend} skipped: {reason}", markup=False)
    for row in report.rows:
        if row.verdict == "FAIL":
            console.print(f"{row.family} / {row.backend} FAILED: {row.detail}", style="red", markup=False)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    failed = sum(row.verdict == "FAIL" for row in report.rows)
    checked = sum(row.verdict != "skipped" for row in report.rows)
    console.print(
        f"[red]{failed} of {checked} checks failed[/]" if failed else f"[green]all {checked} checks passed[/]"
    )
    console.print(f"fastv doctor took {report.seconds:.1f} s (one CPU thread)", markup=False)


def _mark(value: bool | None, good: str) -> str:
    return "" if value is None else (good if value else "[red]no[/]")
