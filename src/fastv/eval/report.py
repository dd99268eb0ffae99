"""Turning evaluation results into a table, ``results.json`` and an accuracy-vs-FLOPs plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from fastv.eval.runner import BASELINE, summary

RESULTS_JSON = "results.json"
PLOT_PNG = "accuracy_vs_flops.png"


def results_table(results: Sequence[dict[str, Any]], title: str = "FastV evaluation") -> Table:
    """A rich table, one row per setting, accuracy also shown relative to the baseline."""
    table = Table(title=title)
    for col in ("setting", "acc", "rel. acc", "FLOPs (Eq.5)", "img tok kept", "time s", "n"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    for r in summary(results):
        rel = r["relative_accuracy"]
        table.add_row(
            r["setting"],
            f"{100 * r['accuracy']:.2f} ± {100 * r['stderr']:.2f}%",
            "-" if rel is None else f"{100 * rel:.1f}%",
            f"{100 * r['flops_ratio']:.1f}%",
            f"{r['kept_image_tokens']:.1f}/{r['image_tokens']:.0f}",
            f"{r['time_s']:.1f}",
            str(r["n"]),
        )
    return table


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """The same table as Markdown (for docs)."""
    lines = [
        "| setting | accuracy ± s.e. | rel. to baseline | FLOPs ratio (Eq. 5) | image tokens kept | time (s) | n |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary(results):
        rel = r["relative_accuracy"]
        lines.append(
            f"| {r['setting']} | {100 * r['accuracy']:.2f} ± {100 * r['stderr']:.2f}% | {'-' if rel is None else f'{100 * rel:.1f}%'} "
            f"| {100 * r['flops_ratio']:.1f}% | {r['kept_image_tokens']:.1f} / {r['image_tokens']:.0f} "
            f"| {r['time_s']:.1f} | {r['n']} |"
        )
    return "\n".join(lines) + "\n"


def _amount(result: dict[str, Any]) -> str:
    return f"k{result['keep']}" if result.get("keep") is not None else f"R{round(100 * result['ratio'])}"


def kinds_markdown(results: Sequence[dict[str, Any]]) -> str:
    """Accuracy per question type (rows) and setting (columns), for datasets whose samples carry a type."""
    kinds = list(dict.fromkeys(kind for r in results for kind in r.get("by_kind", {})))
    if not kinds:
        return ""
    lines = ["| type | " + " | ".join(r["setting"] for r in results) + " |", "|---|" + "---:|" * len(results)]
    for kind in kinds:
        cells = [
            f"{100 * r['by_kind'][kind]['accuracy']:.1f}" if kind in r.get("by_kind", {}) else "-" for r in results
        ]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_accuracy_vs_flops(results: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """One curve per ranker (each starting at the baseline point), accuracy over FLOPs ratio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = [r for r in results if r["rank"] == BASELINE]
    curves = sorted({(r["k"], r["rank"]) for r in results if r["rank"] != BASELINE})
    several_k = len({k for k, _ in curves}) > 1
    fig, ax = plt.subplots(figsize=(7.2, 4.8) if several_k else (6.4, 4.4), dpi=120)
    for k, rank in curves:
        pts = sorted(
            ((r["flops_ratio"], r["accuracy"], _amount(r)) for r in results if (r["k"], r["rank"]) == (k, rank)),
            reverse=True,
        )
        pts = [(b["flops_ratio"], b["accuracy"], "") for b in base] + pts
        xs, ys = [100 * p[0] for p in pts], [100 * p[1] for p in pts]
        label = f"K{k} {rank}" if several_k else rank
        ax.plot(xs, ys, marker="o", linestyle="--" if rank == "random" else "-", label=label)
        for x, y, amount in pts[len(base) :]:
            ax.annotate(amount, (100 * x, 100 * y), textcoords="offset points", xytext=(3, 4), fontsize=6)
    for b in base:
        ax.scatter([100 * b["flops_ratio"]], [100 * b["accuracy"]], color="black", zorder=5, label="baseline")
    ax.set_xlabel("prefill FLOPs of the language model (% of baseline, Eq. 5)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "FastV: accuracy vs FLOPs")
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7 if several_k else None, ncol=2 if several_k else 1)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_results(
    results: Sequence[dict[str, Any]], out_dir: Path, meta: dict[str, Any] | None = None, title: str = ""
) -> tuple[Path, Path]:
    """``results.json`` (settings, per-sample predictions, run metadata) and the PNG plot."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / RESULTS_JSON
    payload = {
        "meta": meta or {},
        "results": summary(results),
        "predictions": {r["setting"]: r["predictions"] for r in results},
    }
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    png_path = plot_accuracy_vs_flops(results, out_dir / PLOT_PNG, title)
    return json_path, png_path
