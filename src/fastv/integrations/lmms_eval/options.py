"""Turn lmms-eval ``--model_args`` values into a FastV setting (or None for the unpruned baseline)."""

from __future__ import annotations

from typing import Any

from fastv.config import FastVConfig


def _number(value: Any, name: str, kind: type) -> Any:
    if value is None or value == "":
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"model_args {name}={value!r} is not a valid {kind.__name__}.") from e
    if kind is int and number != float(value):
        raise ValueError(f"model_args {name}={value!r} must be a whole number.")
    return number


def fastv_config(
    k: Any = None, ratio: Any = None, rank: Any = None, keep: Any = None, seed: Any = 0, budget: Any = None
) -> FastVConfig | None:
    """FastV(k, ratio | keep, rank), or None when nothing is pruned (no ``k``, or ``ratio=0`` without ``keep``).

    ``k`` alone means the default ratio (0.5).

    lmms-eval hands model_args over as str/int/float; they are validated here so a typo fails before
    any weights load. ``ratio``/``keep`` without ``k`` is an error rather than a silent baseline.
    """
    k, keep = _number(k, "k", int), _number(keep, "keep", int)
    ratio, seed = _number(ratio, "ratio", float), _number(seed, "seed", int) or 0
    if k is None:
        if keep is not None or (ratio or 0.0) > 0:
            raise ValueError("model_args gives ratio/keep but no k: add k=2 (the paper's setting) or drop them.")
        return None
    if keep is None and ratio == 0:
        return None
    ratio = FastVConfig.ratio if ratio is None else ratio
    return FastVConfig(
        k=k, ratio=ratio, rank=rank or FastVConfig.rank, keep=keep, seed=seed, budget=budget or FastVConfig.budget
    )


def resolve_pretrained(pretrained: str) -> str:
    """``builtin`` names the model shipped with fastv (offline); anything else goes to ``from_pretrained`` as is."""
    if pretrained != "builtin":
        return pretrained
    from fastv.builtin import BUILTIN_MODEL_DIR

    if not (BUILTIN_MODEL_DIR / "config.json").is_file():
        raise FileNotFoundError(
            f"pretrained=builtin: the built-in model is missing from {BUILTIN_MODEL_DIR}; rebuild it with "
            f"`python -m fastv.builtin.train --out {BUILTIN_MODEL_DIR}`."
        )
    return str(BUILTIN_MODEL_DIR)


def describe(config: FastVConfig | None) -> str:
    """Short label for tables and logs."""
    return "baseline (no pruning)" if config is None else config.describe()
