"""Where fastv keeps what it builds on first use (datasets, assembled checkpoints): ``$FASTV_CACHE``,
else ``~/.cache/fastv``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("FASTV_CACHE", Path.home() / ".cache" / "fastv"))
