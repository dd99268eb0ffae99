"""``fastv doctor`` passes on a correct stack and fails when the patch is broken (it cannot pass vacuously)."""

from __future__ import annotations

import json
import re

import pytest
import torch
import transformers
from packaging.version import Version

import fastv
import fastv.patch
from fastv import selfcheck
from fastv.cli import main
from fastv.families import supported_families
from fastv.selfcheck import doctor, tolerance
from fastv.selfcheck.cases import CASES


def test_top_level_doctor_returns_the_report():
    report = fastv.doctor(attn=["sdpa"], families=["llava"])
    assert report.ok and [(r.family, r.verdict) for r in report.rows] == [("llava", "ok")]


def test_every_supported_family_has_a_case():
    assert sorted(CASES) == sorted(supported_families())


def test_report_is_data_with_every_check_passing():
    report = doctor(attn=["sdpa", "eager"], families=["llava", "gemma3"])
    assert report.ok
    assert [(r.family, r.backend) for r in report.rows] == [
        ("llava", "sdpa"),
        ("llava", "eager"),
        ("gemma3", "sdpa"),
        ("gemma3", "eager"),
    ]
    for row in report.rows:
        assert row.verdict == "ok" and row.dtype == "float32" and row.device == "cpu"
        assert row.ratio_zero_identical and row.kept_matches and row.remove_restores
        assert 0 <= row.max_diff < row.tolerance == 1e-4
    assert report.versions["transformers"] and report.versions["torch"] == torch.__version__
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


def _drop_the_best_tokens(monkeypatch):
    """A broken patch: rank upside down, so FastV drops the most-attended image tokens instead."""
    original = fastv.patch.plan_keep
    monkeypatch.setattr(fastv.patch, "plan_keep", lambda scores, *args: original(-scores, *args))


def _gather_shifted_tokens(monkeypatch):
    """A broken patch: report the right kept set but feed the pruned layers the next token's hidden state."""
    original = fastv.patch.gather_sequence

    def shifted(tensor, indices, seq_dim):
        limit = tensor.shape[seq_dim] - 1
        return original(tensor, (indices + 1).clamp(max=limit) if seq_dim == 1 else indices, seq_dim=seq_dim)

    monkeypatch.setattr(fastv.patch, "gather_sequence", shifted)


@pytest.mark.parametrize(
    ("breakage", "symptom"),
    [(_drop_the_best_tokens, "kept set differs"), (_gather_shifted_tokens, "max diff")],
)
def test_a_broken_patch_fails(monkeypatch, breakage, symptom):
    breakage(monkeypatch)
    report = doctor(attn=["sdpa"], families=["llava", "qwen2_vl"])
    assert not report.ok
    for row in report.rows:
        assert row.verdict == "FAIL" and symptom in row.detail
        assert row.ratio_zero_identical and row.remove_restores  # ratio 0 never reaches the broken code


def test_cli_exit_code_follows_the_verdict(monkeypatch, capsys):
    assert main(["doctor", "--family", "llava", "--attn", "sdpa"]) == 0
    out = capsys.readouterr().out
    assert "all 1 checks passed" in out
    assert f"fastv doctor on transformers {transformers.__version__}, torch {torch.__version__}, cpu:" in out
    _drop_the_best_tokens(monkeypatch)
    assert main(["doctor", "--family", "llava", "--attn", "sdpa", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["rows"][0]["kept_matches"] is False


def test_cli_rejects_unknown_family_and_backend(capsys):
    assert main(["doctor", "--family", "llama"]) == 2
    families = ", ".join(sorted(supported_families()))
    assert f"unknown family llama: choose from {families}." in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:  # refused while parsing (fastv.cli._types.Names)
        main(["doctor", "--attn", "flash"])
    assert stopped.value.code == 2
    assert "argument --attn: unknown 'flash' (choose from sdpa, eager, flash_attention_2)" in capsys.readouterr().err


def test_flash_attention_is_skipped_with_a_reason_on_cpu():
    (row,) = doctor(attn=["flash_attention_2"], families=["llava"]).rows
    assert row.verdict == "skipped" and row.detail == "needs a CUDA device"


def test_a_family_missing_from_the_installed_transformers_is_skipped_with_its_first_release(monkeypatch):
    """A family whose model classes this release lacks (Ovis2.5 before 5.25) is skipped, naming the release."""
    family = supported_families()["llava"]
    monkeypatch.setattr(family, "model_classes", ("NoSuchVlmForConditionalGeneration",))
    monkeypatch.setattr(family, "first_transformers", "9.0.0")
    rows = doctor(attn=["sdpa", "eager"], families=["llava"]).rows
    assert [row.verdict for row in rows] == ["skipped", "skipped"]
    assert rows[0].detail.endswith("has no NoSuchVlmForConditionalGeneration, added in transformers 9.0.0")


def test_half_precision_tolerance_is_in_ulps_of_the_largest_logit():
    assert tolerance(torch.float32, 50.0) == 1e-4
    assert tolerance(torch.bfloat16, 10.0) == pytest.approx(8 * 2**-7 * 10)
    report = doctor(attn=["sdpa"], families=["llava"], dtype=torch.bfloat16)
    assert report.ok and report.rows[0].dtype == "bfloat16"


@pytest.mark.parametrize("tested", [("2.13.0",), ("9.0.0",)])
def test_a_torch_release_ci_does_not_run_is_noted(monkeypatch, tested):
    monkeypatch.setattr(selfcheck, "TESTED_TORCH", tested)
    notes = doctor(attn=["sdpa"], families=["llava"]).notes
    untested = [note for note in notes if note.startswith(f"torch {torch.__version__} is not a release CI runs")]
    assert len(untested) == (Version(torch.__version__).base_version not in tested)


def test_cli_prints_how_long_the_run_took(capsys):
    assert main(["doctor", "--family", "llava", "--attn", "sdpa"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"fastv doctor took \d+\.\d s \(one CPU thread\)", last), last
    assert main(["doctor", "--family", "llava", "--attn", "sdpa", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seconds"] > 0


def test_doctor_runs_on_one_thread_and_restores_the_callers_setting(monkeypatch):
    """Tiny models gain nothing from threads; on a busy machine each extra one waits for a core at every op."""
    seen = []
    original = selfcheck.check_family

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(selfcheck, "check_family", recording)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        report = doctor(attn=["sdpa", "eager"], families=["llava"])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert report.ok and seen == [1, 1] and report.seconds >= sum(row.seconds for row in report.rows) > 0
