"""PNG plots of the study (the paper's Figures 1-2): allocation and efficiency per layer, attention maps.

matplotlib's Agg backend only: works headless, no display needed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fastv.analysis.report import StudyReport
from fastv.analysis.study import CLASSES, SampleAnalysis

COLOURS = {"system": "#4c72b0", "image": "#dd8452", "instruction": "#55a868", "output": "#c44e52"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _present(report: StudyReport) -> list[int]:
    """Classes with at least one token in some sample (no empty 'system' line for prompts that start with the image)."""
    counts = torch.stack([s.counts for s in report.samples]).sum(0)
    return [i for i in range(len(CLASSES)) if counts[i] > 0]


def _attention_layers(table: torch.Tensor) -> tuple[list[int], str]:
    """Layers that have attention (a hybrid decoder's recurrent layers are all-NaN rows), and a title note."""
    layers = [i for i in range(table.shape[0]) if not bool(torch.isnan(table[i]).all())]
    return layers, "" if len(layers) == table.shape[0] else ", attention layers only"


def plot_allocation(report: StudyReport, path: str | Path, title: str | None = None) -> Path:
    """Stacked shares per layer: where each layer's attention goes (sums to 1)."""
    plt = _pyplot()
    layers, note = _attention_layers(report.allocation)
    alloc = report.allocation.numpy()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    present = _present(report)
    ax.stackplot(
        layers,
        *[alloc[layers, i] for i in present],
        labels=[CLASSES[i] for i in present],
        colors=[COLOURS[CLASSES[i]] for i in present],
        alpha=0.85,
    )
    ax.set(
        xlabel="decoder layer", ylabel="attention allocation (share)", ylim=(0, 1), xlim=(0, max(1, alloc.shape[0] - 1))
    )
    ax.set_title(title or f"Attention allocation per layer ({len(report.samples)} samples{note})")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    _integer_layers(ax)
    return _save(fig, path)


def _integer_layers(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_efficiency(report: StudyReport, path: str | Path, title: str | None = None) -> Path:
    """Attention per token of each class, log scale: image tokens are the inefficient ones."""
    plt = _pyplot()
    layers, note = _attention_layers(report.allocation)
    eff = report.efficiency.numpy()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for i in _present(report):
        ax.plot(layers, eff[layers, i], marker="o", ms=3, label=CLASSES[i], color=COLOURS[CLASSES[i]])
    ax.set_yscale("log")
    ax.set(xlabel="decoder layer", ylabel="attention efficiency (per token)")
    ax.set_title(title or f"Attention efficiency per layer ({len(report.samples)} samples{note})")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.grid(alpha=0.3, which="both")
    _integer_layers(ax)
    return _save(fig, path)


def plot_attention_map(sample: SampleAnalysis, layer: int, path: str | Path) -> Path:
    """One layer's pooled attention map (mean per block, log colour), class boundaries marked."""
    from matplotlib.colors import LogNorm

    plt = _pyplot()
    pooled = sample.maps[layer].numpy()
    n = sample.classes.numel()
    bins = pooled.shape[0]
    positive = pooled[pooled > 0]
    vmin = max(float(positive.min()), float(positive.max()) * 1e-6) if positive.size else 1e-9
    fig, ax = plt.subplots(figsize=(5.4, 4.6), dpi=120)
    image = ax.imshow(
        pooled,
        norm=LogNorm(vmin=vmin, vmax=max(vmin * 10, float(pooled.max()))),
        cmap="viridis",
        interpolation="nearest",
        extent=(0, n, n, 0),  # axes in token positions, whatever the pooling
    )
    for name, start, stop in sample.class_bounds():
        if start:
            ax.axhline(start, color="white", lw=0.6, alpha=0.7)
            ax.axvline(start, color="white", lw=0.6, alpha=0.7)
        if (stop - start) / n >= 0.1:  # label runs wide enough to read
            ax.text(
                (start + stop) / 2,
                -0.01 * n,
                name,
                ha="center",
                va="bottom",
                fontsize=7,
                color=COLOURS[name],
            )
    ax.set(xlabel=f"key position ({n} tokens, {bins} bins)", ylabel="query position")
    ax.set_title(f"Layer {layer} attention (head mean, pooled)", pad=12)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="mean attention")
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
