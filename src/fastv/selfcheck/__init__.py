"""``fastv doctor``: is FastV exact on *this* torch / transformers / device?

For every supported family it builds a tiny random-weight model from its config and checks, per
attention backend: (a) ratio 0 is bit-identical to the unpatched model, (b) a pruned prefill and
cached decode steps equal the independent cache-free reference (and the kept set equals the one
eager attention maps give), (c) ``remove`` restores the model bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata

import torch
import transformers
from packaging.version import Version

import fastv
from fastv.compat import TESTED_TORCH, TESTED_TRANSFORMERS, is_newer_than_tested
from fastv.families import supported_families
from fastv.selfcheck import cases
from fastv.selfcheck.case import Case, to_device
from fastv.selfcheck.checks import compare_with_reference, ratio_zero_identical, remove_restores

# Max abs logit difference allowed against the reference. fp32: an absolute 1e-4 (only reduction order
# differs). bf16 / fp16: the reference and FastV round differently (an explicit additive mask against
# SDPA's causal path), so the bound is 8 units in the last place of the largest reference logit,
# 8 * eps * max|logit|; on the CPU the worst case seen was 1 ulp (bf16) and 3 ulps (fp16).
ULPS = 8


def tolerance(dtype: torch.dtype, scale: float) -> float:
    return 1e-4 if dtype == torch.float32 else ULPS * torch.finfo(dtype).eps * scale


def tie_tolerance(dtype: torch.dtype, scores: torch.Tensor | None) -> float:
    """Ranking scores closer than this may be ordered either way: none in fp32, 8 ulps in half precision."""
    if dtype == torch.float32 or scores is None:
        return 0.0
    return ULPS * torch.finfo(dtype).eps * float(scores.abs().max())


DTYPES = (torch.float32, torch.bfloat16, torch.float16)
BACKENDS = ("sdpa", "eager", "flash_attention_2")
# What every case checks: ranked at layer k - 1 = 1 by the default ranker, half the image tokens dropped.
DOCTOR_CONFIG = fastv.FastVConfig(k=2, ratio=0.5)


@dataclass
class DoctorRow:
    family: str
    backend: str
    dtype: str
    device: str
    verdict: str  # "ok" | "FAIL" | "skipped"
    ratio_zero_identical: bool | None = None
    kept_matches: bool | None = None
    max_diff: float | None = None
    tolerance: float | None = None
    remove_restores: bool | None = None
    seconds: float = 0.0
    detail: str = ""


@dataclass
class DoctorReport:
    rows: list[DoctorRow]
    versions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole run

    @property
    def ok(self) -> bool:
        return all(row.verdict != "FAIL" for row in self.rows) and any(row.verdict == "ok" for row in self.rows)

    def to_dict(self) -> dict:
        rows = [asdict(r) for r in self.rows]
        return {"ok": self.ok, "seconds": self.seconds, "versions": self.versions, "notes": self.notes, "rows": rows}


def _versions(device: torch.device) -> dict[str, str]:
    versions = {
        "fastv": metadata.version("fastv-vlm"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tested transformers": f"{TESTED_TRANSFORMERS[0]} to {TESTED_TRANSFORMERS[1]}",
        "tested torch": ", ".join(TESTED_TORCH),
        "device": str(device),
    }
    if device.type == "cuda":
        versions["gpu"] = torch.cuda.get_device_name(device)
    return versions


def _notes() -> list[str]:
    notes = []
    if is_newer_than_tested():
        notes.append(f"transformers {transformers.__version__} is newer than the newest tested release.")
    if Version(torch.__version__).base_version not in TESTED_TORCH:
        notes.append(
            f"torch {torch.__version__} is not a release CI runs the suite on ({', '.join(TESTED_TORCH)}): "
            "the checks above are what vouch for this stack."
        )
    owners = metadata.packages_distributions().get("fastv", [])
    others = sorted({name for name in owners if name.lower().replace("_", "-") != "fastv-vlm"})
    if others:
        notes.append(
            f"the import name `fastv` is also installed by {', '.join(others)} (an unrelated PyPI project): "
            f"`pip uninstall {' '.join(others)}` and reinstall fastv-vlm."
        )
    return notes


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _unavailable(backend: str, device: torch.device) -> str | None:
    if backend == "flash_attention_2":
        if device.type != "cuda":
            return "needs a CUDA device"
        if not transformers.utils.is_flash_attn_2_available():
            return "flash-attn is not installed"
    return None


def build_case(model_type: str, backend: str, device: torch.device | str = "cpu", dtype=torch.float32) -> Case:
    """One family's doctor case: the same tiny weights on every run; the caller's RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return to_device(cases.CASES[model_type](backend), torch.device(device), dtype)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run on one CPU thread: the tiny models' matrices are too small to gain from more, and on a busy
    machine every extra thread waits for a core at each op (minutes instead of seconds)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_family(model_type: str, backend: str, device: torch.device, dtype: torch.dtype, steps: int = 4) -> DoctorRow:
    """The three checks on one family's tiny model with one attention backend."""
    row = DoctorRow(model_type, backend, _name(dtype), str(device), "FAIL")
    start = time.perf_counter()
    try:
        case = build_case(model_type, backend, device, dtype)
        row.ratio_zero_identical = ratio_zero_identical(case.model, case.inputs)
        result = compare_with_reference(
            case.model, case.inputs, DOCTOR_CONFIG, case.prunable, case.positions, case.blocks, steps=steps
        )
        row.kept_matches = result.kept_matches_up_to_ties(tie_tolerance(dtype, result.scores))
        row.max_diff = result.max_diff
        row.tolerance = tolerance(dtype, result.scale)
        row.remove_restores = remove_restores(case.model, case.inputs, DOCTOR_CONFIG)
        failed = [
            name
            for name, good in [
                ("ratio 0 not identical", row.ratio_zero_identical),
                ("kept set differs from eager attention", row.kept_matches),
                (f"max diff {row.max_diff:.2e} >= {row.tolerance:.2e}", row.max_diff < row.tolerance),
                ("remove() does not restore", row.remove_restores),
            ]
            if not good
        ]
        row.verdict, row.detail = ("FAIL", "; ".join(failed)) if failed else ("ok", "")
    except Exception as error:  # a crash is a failed check, reported with its message
        row.detail = f"{type(error).__name__}: {error}"
    row.seconds = time.perf_counter() - start
    return row


def doctor(
    device: str | torch.device = "cpu",
    attn: tuple[str, ...] | list[str] = ("sdpa", "eager", "flash_attention_2"),
    families: list[str] | None = None,
    dtype: torch.dtype | None = None,
) -> DoctorReport:
    """Run the self-check; the same table ``fastv doctor`` prints, as data.

    dtype defaults to float32 on the CPU and bfloat16 on a GPU (what users run there). Runs on one CPU
    thread (``one_thread``), restoring the caller's setting.
    """
    start = time.perf_counter()
    device = torch.device(device)
    dtype = dtype or (torch.float32 if device.type == "cpu" else torch.bfloat16)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(map(str, DTYPES))}, got {dtype}.")
    known = sorted(supported_families())
    chosen = families or known
    unknown = [name for name in chosen if name not in cases.CASES]
    if unknown:
        raise ValueError(f"unknown family {', '.join(unknown)}: choose from {', '.join(known)}.")
    bad = [name for name in attn if name not in BACKENDS]
    if bad:
        raise ValueError(f"unknown attention backend {', '.join(bad)}: choose from {', '.join(BACKENDS)}.")
    rows = []
    families_by_type = supported_families()
    with one_thread():
        for model_type in chosen:
            missing = families_by_type[model_type].unavailable_reason()
            for backend in attn:
                reason = missing or _unavailable(backend, device)
                if reason:
                    rows.append(DoctorRow(model_type, backend, _name(dtype), str(device), "skipped", detail=reason))
                else:
                    rows.append(check_family(model_type, backend, device, dtype))
    return DoctorReport(rows, _versions(device), _notes(), seconds=time.perf_counter() - start)


__all__ = [
    "DOCTOR_CONFIG",
    "ULPS",
    "DoctorReport",
    "DoctorRow",
    "build_case",
    "check_family",
    "doctor",
    "one_thread",
    "tie_tolerance",
    "tolerance",
]
