"""The validated FastV setting: what to prune, where, and how to rank."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Rank = Literal["last_token", "mean", "random"]
RANKERS: tuple[str, ...] = ("last_token", "mean", "random")
Budget = Literal["global", "per_image"]
BUDGETS: tuple[str, ...] = ("global", "per_image")


@dataclass(frozen=True)
class FastVConfig:
    """FastV(K, R).

    k: first pruned decoder layer. Layers ``0..k-1`` see every token and layer ``k-1``'s attention
       ranks the image tokens; layers ``k..L-1`` see only the kept ones.
    ratio: share of each sample's image tokens dropped, ``floor(ratio * n_img)``, in ``[0, 1)``.
    keep: alternatively, the absolute number of image tokens kept per sample (a token budget, as in
       the "64 / 128 / 192 tokens" comparisons of later papers). Setting ``keep`` overrides ``ratio``.
    rank: ``"last_token"`` (the original code: the last prompt token's attention row, head-averaged;
       default), ``"mean"`` (the paper's text: attention received, averaged over all prompt queries),
       or ``"random"`` (the ablation baseline, seeded by ``seed``).
    budget: ``"global"`` (default: one ranking over all of a sample's image / video tokens, so a busy
       image can keep more tokens than a blank one) or ``"per_image"`` (each image, and each video
       frame, is ranked on its own and keeps the same share: ``ratio`` drops ``floor(ratio * n)`` of
       every image's ``n`` tokens; ``keep`` keeps ``keep`` tokens of every image).
    """

    k: int = 2
    ratio: float = 0.5
    rank: Rank = "last_token"
    keep: int | None = None
    seed: int = 0
    budget: Budget = "global"

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int):
            raise TypeError(f"FastVConfig.k must be an int, got {type(self.k).__name__}.")
        if self.k < 1:
            raise ValueError(
                f"FastVConfig.k={self.k} is out of range: k must be >= 1. Layer k-1's attention ranks the image "
                "tokens, and layer 0 must keep the full sequence (every 'past length' in transformers reads "
                "layer 0's cache). Use k=1 to prune right after the first layer, or k=2 (the paper's setting)."
            )
        if self.keep is not None:
            if isinstance(self.keep, bool) or not isinstance(self.keep, int) or self.keep < 0:
                raise ValueError(
                    f"FastVConfig.keep={self.keep!r} must be a non-negative int (image tokens kept per sample), "
                    "or None to use ratio."
                )
        elif not isinstance(self.ratio, (int, float)) or isinstance(self.ratio, bool):
            raise TypeError(f"FastVConfig.ratio must be a float, got {type(self.ratio).__name__}.")
        elif math.isnan(self.ratio) or not 0.0 <= self.ratio < 1.0:
            raise ValueError(
                f"FastVConfig.ratio={self.ratio} is outside [0, 1): it is the share of image tokens dropped. "
                "Use e.g. ratio=0.5 to drop half, or keep=N to keep an absolute number of image tokens."
            )
        if self.rank not in RANKERS:
            raise ValueError(f"FastVConfig.rank={self.rank!r} is unknown; choose one of {', '.join(RANKERS)}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**64:
            raise ValueError(
                f"FastVConfig.seed={self.seed!r} must be an int in [0, 2**64) (it seeds rank='random'), e.g. seed=0."
            )
        if self.budget not in BUDGETS:
            raise ValueError(
                f"FastVConfig.budget={self.budget!r} is unknown; choose 'global' (one ranking over all image "
                "tokens of a sample) or 'per_image' (every image / video frame keeps the same share)."
            )

    def n_dropped(self, n_image_tokens: int) -> int:
        """How many of a sample's ``n_image_tokens`` this setting drops."""
        if self.keep is not None:
            return max(0, n_image_tokens - self.keep)
        # The epsilon keeps e.g. 0.29 * 100 (= 28.999999999999996 in binary) from flooring to 28.
        return math.floor(self.ratio * n_image_tokens + 1e-9)

    def describe(self) -> str:
        budget = f"keep={self.keep}" if self.keep is not None else f"ratio={self.ratio:g}"
        scope = "" if self.budget == "global" else f", budget={self.budget}"
        return f"FastV(k={self.k}, {budget}, rank={self.rank}{scope})"
