"""PNG of speedup vs ratio: measured (prefill, decode per token) against the FLOPs / bytes predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastv.config import FastVConfig
from fastv.measure.flops import flops, kv_cache_bytes
from fastv.measure.shapes import text_shape


def plot_speedup(result: Any, model_config: Any, path: str | Path) -> Path:
    """Write the plot to ``path`` (matplotlib, Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    before, image, after = result.layout
    layouts = [(before, image, after)] * result.batch_size
    t = text_shape(model_config)
    dtype_bytes = 2 if result.dtype in ("bfloat16", "float16") else 4
    grid = [i / 20 for i in range(20)]
    ks = sorted({v.fastv.k for v in result.variants if v.fastv is not None})
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    for i, k in enumerate(ks):
        color = f"C{i}"
        attention = "dense" if getattr(model_config, "_attn_implementation", "eager") == "eager" else "causal"
        predicted = [
            flops(model_config, layouts, FastVConfig(k=k, ratio=r), attention=attention).predicted_speedup for r in grid
        ]
        ax.plot(grid, predicted, "-", color=color, label=f"K={k} prefill, FLOPs-predicted")
        n = before + image + after
        kv = [
            result.batch_size * kv_cache_bytes(t, n, n - FastVConfig(k=k, ratio=r).n_dropped(image), k, dtype_bytes)
            for r in grid
        ]
        w = result.decode_weight_bytes
        ax.plot(grid, [(w + kv[0]) / (w + x) for x in kv], ":", color=color, label=f"K={k} decode, bytes-predicted")
        points = [v for v in result.variants if v.fastv is not None and v.fastv.k == k]
        xs = [v.fastv.ratio for v in points]
        ax.plot(
            xs,
            [v.speedup("prefill_s") or float("nan") for v in points],
            "o",
            color=color,
            label=f"K={k} prefill, measured",
        )
        ax.plot(
            xs,
            [v.speedup("decode_token_s") or float("nan") for v in points],
            "s",
            mfc="none",
            color=color,
            label=f"K={k} decode/token, measured",
        )
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xlabel("R (share of image tokens dropped)")
    ax.set_ylabel("speedup over baseline")
    model = result.description.split(", random")[0].split(" (")[0]
    ax.set_title(
        f"{model}\n{before}+{image}+{after} tokens x batch {result.batch_size} ({result.device}, {result.dtype})",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
