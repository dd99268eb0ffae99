"""Model-family adapters, registered by ``config.model_type``.

Each family is one package here: its adapter (``__init__.py``, which registers it with
``register_family``) and its self-check (``selfcheck.py``: a tiny model built from a config, its prompts
and its doctor cases). Importing this package imports every family package, so the registry is
discovered, never listed.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastv.families.base import Family
from fastv.families.registry import UNSUPPORTED, family_for, register_family, supported_families


def _import_family_packages() -> None:
    for module in pkgutil.iter_modules(__path__, f"{__name__}."):
        if module.ispkg:
            importlib.import_module(module.name)


_import_family_packages()

__all__ = ["UNSUPPORTED", "Family", "family_for", "register_family", "supported_families"]
