"""Shared fixtures: tiny random-weight VLMs of each family, built from configs (no hub access)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest
import torch

from fastv.families.llava.selfcheck import tiny_llava, tiny_llava_next
from fastv.selfcheck.tiny import TinyVLM

if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):  # pytest -n: share the cores, don't oversubscribe
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture(params=["sdpa", "eager"])
def llava(request) -> TinyVLM:
    return tiny_llava(attn_implementation=request.param)


@pytest.fixture
def llava_next() -> TinyVLM:
    return tiny_llava_next()
