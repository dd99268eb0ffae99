"""Shared by the lmms-eval tests: a tiny checkpoint on disk and the local easy-VQA tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastv.integrations.lmms_eval.make_task import write_tasks
from tests.integrations.tiny_vlm import build

N_DOCS = 20
ENTRY_POINT = "fastv = fastv.integrations.lmms_eval.manifest:MANIFEST"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def include_path(tmp_path_factory) -> Path:
    return write_tasks(tmp_path_factory.mktemp("tasks"), n=N_DOCS)


def fake_entry_point(root: Path) -> Path:
    """A dist-info declaring the entry point exactly as pyproject will, for before the package is reinstalled."""
    info = root / "fastv_lmms_entrypoint-0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fastv-lmms-entrypoint\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(f"[lmms_eval.models]\n{ENTRY_POINT}\n")
    return root
