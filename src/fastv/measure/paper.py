"""Reference numbers from the FastV paper (Chen et al. 2024, arXiv 2403.06764), for comparison only."""

from __future__ import annotations

# Table 1 "FLOPs ratio" column: (preset, K, R) -> share of the baseline's FLOPs.
# 13B at R=90% is the figure given in issue 4 (the shared notes list 13B only at R=50% / 75%).
TABLE1_FLOPS_RATIO: dict[tuple[str, int, float], float] = {
    ("llava-1.5-7b", 2, 0.5): 0.55,
    ("llava-1.5-7b", 2, 0.75): 0.33,
    ("llava-1.5-7b", 2, 0.9): 0.20,
    ("llava-1.5-13b", 2, 0.5): 0.55,
    ("llava-1.5-13b", 2, 0.75): 0.32,
    ("llava-1.5-13b", 2, 0.9): 0.19,
}


def table1_ratio(preset: str, k: int, ratio: float) -> float | None:
    """The paper's Table 1 FLOPs ratio for this setting, or None if the table has no such row."""
    return TABLE1_FLOPS_RATIO.get((preset, k, round(ratio, 4)))
