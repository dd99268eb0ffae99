"""One self-check case per supported model type, found where each family defines it.

A family package ``fastv.families.<name>`` keeps its doctor cases in its ``selfcheck`` module, as
``CASES: dict[model_type, CaseBuilder]``; nothing here names a family. ``CASES`` here is every
registered family's, discovered on first use.
"""

from __future__ import annotations

import importlib

from fastv.families import Family, supported_families
from fastv.selfcheck.case import Case, CaseBuilder, to_device


def selfcheck_module_name(family: Family) -> str:
    """Where a family's self-check lives: the ``selfcheck`` module beside its adapter."""
    return f"{type(family).__module__}.selfcheck"


def family_cases(family: Family) -> dict[str, CaseBuilder]:
    """The doctor cases ``family`` defines (none for an adapter registered without a self-check module)."""
    name = selfcheck_module_name(family)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        return {}
    return {model_type: build for model_type, build in module.CASES.items() if model_type in family.model_types}


def discover_cases() -> dict[str, CaseBuilder]:
    """model_type -> doctor case builder, for every registered family that has a self-check."""
    found: dict[str, CaseBuilder] = {}
    for family in {id(f): f for f in supported_families().values()}.values():
        found |= family_cases(family)
    return dict(sorted(found.items()))


CASES: dict[str, CaseBuilder]  # set by __getattr__ on first use


def __getattr__(name: str):
    """``CASES``, discovered on first use: the family self-check modules import this package's helpers, so
    discovering at import time would import them half-initialised."""
    if name == "CASES":
        globals()["CASES"] = cases = discover_cases()
        return cases
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CASES", "Case", "discover_cases", "family_cases", "to_device"]
