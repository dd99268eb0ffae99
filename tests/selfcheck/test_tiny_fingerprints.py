"""Every tiny model and doctor prompt is exactly what it was when the fingerprints were recorded.

The family modules build the self-check's tiny models and prompts; moving that code around must not change
a single weight or token. Each doctor case (model state_dict and prompt tensors) and each ``tiny_*`` builder's
default model is hashed and compared with ``tiny_fingerprints.json``, recorded per transformers release
(their initialisers and configs can differ between releases). Re-record only on purpose:
``python -m tests.selfcheck.test_tiny_fingerprints --write``.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import transformers

import fastv.families
from fastv.families import supported_families
from fastv.selfcheck.cases import CASES

RECORD = Path(__file__).with_name("tiny_fingerprints.json")


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    sha = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        sha.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        sha.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return sha.hexdigest()


def tiny_builders() -> dict[str, Callable]:
    """Every public ``tiny_*`` builder of the self-check, wherever it is defined."""
    modules = [importlib.import_module("fastv.selfcheck.tiny")]
    for info in pkgutil.walk_packages(fastv.families.__path__, "fastv.families."):
        modules.append(importlib.import_module(info.name))
    found: dict[str, Callable] = {}
    for module in modules:
        for name, value in vars(module).items():
            if name.startswith("tiny_") and inspect.isfunction(value) and value.__module__ == module.__name__:
                found[name] = value
    return found


def _available(model_type: str) -> bool:
    return supported_families()[model_type].unavailable_reason() is None


def fingerprint_case(model_type: str) -> str:
    case = CASES[model_type]("sdpa")
    tensors = {f"model.{k}": v for k, v in case.model.state_dict().items()}
    tensors |= {f"input.{k}": v for k, v in case.inputs.items() if isinstance(v, torch.Tensor)}
    tensors["prunable"] = case.prunable
    if case.blocks is not None:
        tensors["blocks"] = case.blocks
    return _digest(tensors)


def fingerprint_builder(build: Callable) -> str:
    torch.manual_seed(1234)  # a builder must seed itself: this must not matter
    return _digest(build().model.state_dict())


def _recorded() -> dict[str, str]:
    return json.loads(RECORD.read_text()).get(transformers.__version__, {})


def _needs_record() -> None:
    if not _recorded():
        pytest.skip(f"no fingerprints recorded for transformers {transformers.__version__}")


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_doctor_case_is_unchanged(model_type):
    _needs_record()
    if not _available(model_type):
        pytest.skip(f"{model_type} is not in transformers {transformers.__version__}")
    assert fingerprint_case(model_type) == _recorded()[f"case:{model_type}"]


def test_every_recorded_builder_still_exists():
    _needs_record()
    recorded = {key.split(":", 1)[1] for key in _recorded() if key.startswith("tiny:")}
    assert recorded <= set(tiny_builders())


@pytest.mark.parametrize("name", sorted(tiny_builders()))
def test_tiny_builder_default_model_is_unchanged(name):
    _needs_record()
    key = f"tiny:{name}"
    if key not in _recorded():
        pytest.skip(f"{name} was added after the fingerprints were recorded (or is absent from this release)")
    assert fingerprint_builder(tiny_builders()[name]) == _recorded()[key]


def _record_this_release() -> dict[str, str]:
    found = {f"case:{t}": fingerprint_case(t) for t in sorted(CASES) if _available(t)}
    for name, build in sorted(tiny_builders().items()):
        try:
            found[f"tiny:{name}"] = fingerprint_builder(build)
        except Exception as error:  # a family absent from this release
            print(f"skipped {name}: {type(error).__name__}: {str(error)[:80]}", file=sys.stderr)
    return found


if __name__ == "__main__" and "--write" in sys.argv:
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    record[transformers.__version__] = _record_this_release()
    RECORD.write_text(json.dumps(dict(sorted(record.items())), indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(record[transformers.__version__])} fingerprints for transformers {transformers.__version__}")
