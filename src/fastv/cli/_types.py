"""argparse types every sub-command shares: bad values stop at the boundary with one line naming the valid ones.

A value that parses but means nothing (``--batch 0``, ``--ratios nan``, ``--layout 0 0 0``, ``--device cuda``
without a GPU) would otherwise reach the library as a traceback or, worse, as numbers that look right.
Every numeric flag of every verb uses :class:`Number` or :class:`Numbers` (a test walks the parser to
make sure), so the range is stated once, where the flag is declared.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Number:
    """One int or finite float in a range; ``lo_open`` / ``hi_open`` exclude that end."""

    kind: type = int
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def describe(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        lo, hi = self._show(self.lo), self._show(self.hi)
        if self.lo is not None and self.hi is not None:
            return f"{noun} in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{noun} {'>' if self.lo_open else '>='} {lo}"
        if self.hi is not None:
            return f"{noun} {'<' if self.hi_open else '<='} {hi}"
        return noun

    def _show(self, bound: float | None) -> str:
        if bound is None:
            return ""
        return str(int(bound)) if self.kind is int else f"{bound:g}"

    def __call__(self, text: str) -> int | float:
        value = self.parse(text)
        if value is None:
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return value

    def parse(self, text: str) -> int | float | None:
        """The value, or None if ``text`` is not one in range."""
        try:
            value = self.kind(text.strip())
        except ValueError:
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return None
        if self.hi is not None and (value > self.hi or (self.hi_open and value == self.hi)):
            return None
        return value


@dataclass(frozen=True)
class Numbers(Number):
    """A comma-separated list of at least one :class:`Number` (``--ratios 0,0.5,0.75``)."""

    def describe(self) -> str:
        return f"comma-separated values, each {super().describe()}"

    def __call__(self, text: str) -> list[int | float]:  # type: ignore[override]
        parts = text.split(",")
        values = [self.parse(part) for part in parts]
        if not text.strip() or any(value is None for value in values):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return values  # type: ignore[return-value]


POSITIVE_INT = Number(int, 1)
COUNT = Number(int, 0)  # 0 or more (0 often means "skip")
SHARE = Number(float, 0.0, 1.0, hi_open=True)  # FastV's ratio, the reserved part of GPU memory
SEED = Number(int, 0, 2**64, hi_open=True)  # what FastVConfig.seed accepts
RATIOS = Numbers(float, 0.0, 1.0, hi_open=True)  # e.g. 0,0.5,0.75 (0: the unpruned baseline)


@dataclass(frozen=True)
class Names:
    """A comma-separated list of at least one name, each one of ``choices`` (a callable: read when used)."""

    choices: Callable[[], Sequence[str]] | None = None

    def __call__(self, text: str) -> list[str]:
        names = [part.strip() for part in text.split(",")]
        known = tuple(self.choices()) if self.choices else None
        hint = f" (choose from {', '.join(known)})" if known else ""
        if not text.strip() or not all(names):
            raise argparse.ArgumentTypeError(f"expected comma-separated names{hint}, got {text!r}")
        unknown = [name for name in names if known and name not in known]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(map(repr, unknown))}{hint}")
        return names


class Layout(argparse.Action):
    """``--layout BEFORE IMAGE AFTER``: three token counts >= 0 (typed :class:`Number`), not all 0, and a
    prompt with image tokens ends on text (FastV keeps the last token: an image there is not prunable)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("metavar", ("BEFORE", "IMAGE", "AFTER"))
        super().__init__(option_strings, dest, nargs=3, type=COUNT, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, *_: Any) -> None:
        flag = f"argument {'/'.join(self.option_strings)}: {' '.join(map(str, values))}"
        if sum(values) == 0:
            parser.error(f"{flag} is a prompt of 0 tokens; give BEFORE IMAGE AFTER token counts >= 0, e.g. 35 576 1")
        if values[1] and not values[2]:  # the patch never drops the last token: counting it would mislead
            parser.error(f"{flag} ends on an image token, which FastV never drops (the last token ranks the "
                         "others); give AFTER >= 1, e.g. 35 576 1")  # fmt: skip
        setattr(namespace, self.dest, list(values))


def device(text: str) -> str:
    """A torch device that exists here: ``cpu``, ``cuda`` / ``cuda:N`` with a GPU N, ``mps``, ``xpu``."""
    import torch

    valid = "cpu, cuda, cuda:N, mps or xpu"
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use {valid}") from None
    if parsed.type == "cpu":
        return text
    if parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: MPS is not available on this machine; use --device cpu")
        return text
    if parsed.type not in ("cuda", "xpu"):
        raise argparse.ArgumentTypeError(f"unsupported device {text!r}; use {valid}")
    backend = getattr(torch, parsed.type)
    name = parsed.type.upper()
    if not backend.is_available():
        raise argparse.ArgumentTypeError(
            f"{text!r}: {name} is not available (torch {torch.__version__} sees no {name} device); use --device cpu"
        )
    if parsed.index is not None and parsed.index >= backend.device_count():
        raise argparse.ArgumentTypeError(
            f"{text!r}: there are {backend.device_count()} {name} device(s), numbered from 0; use {parsed.type}:0"
        )
    return text


def add_device_option(
    parser: argparse.ArgumentParser, help: str = "torch device: cpu, cuda, cuda:N (default cpu)"
) -> None:
    parser.add_argument("--device", type=device, default="cpu", help=help)
