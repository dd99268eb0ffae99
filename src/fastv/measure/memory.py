"""Peak memory of one measured run, in the same process as the other runs.

CPU: the kernel's resident-set high-water mark (``VmHWM``), reset before each run through
``/proc/self/clear_refs`` (after ``malloc_trim`` returns freed heap pages) so runs do not inherit
each other's peaks; where that is unavailable, a
background thread samples ``VmRSS`` (or, off Linux, ``ru_maxrss``, which never resets). CUDA:
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import resource
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Current resident set size (bytes); falls back to the all-time peak off Linux."""
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _trim_heap() -> None:
    """Hand freed heap pages back to the OS (glibc), so the next run's peak counts its own memory
    rather than reusing pages an earlier run left resident."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_hwm() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


class PeakMemory:
    """``with PeakMemory(device) as pm: ...`` then ``pm.peak`` (bytes) and ``pm.delta`` (peak - start)."""

    def __init__(self, device: str | torch.device = "cpu", sample_every_s: float = 0.002) -> None:
        self.device = torch.device(device)
        self.sample_every_s = sample_every_s
        self.start = self.peak = 0
        self.method = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def delta(self) -> int:
        return max(0, self.peak - self.start)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
            self.method = "cuda.max_memory_allocated"
            return self
        _trim_heap()
        self.start = rss_bytes()
        if _reset_hwm():
            self.method = "VmHWM"
        else:
            self.method = "sampled VmRSS"
            self.peak = self.start
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.sample_every_s)

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())
        else:
            self.peak = (_status_kib("VmHWM") or 0) * 1024
