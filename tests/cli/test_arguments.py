"""Bad command-line values stop at the boundary: one line naming the flag and the valid values, exit code 2.

The walk discovers the verbs and their flags from the parser itself, so a flag added later is covered
(and a numeric flag that bypasses fastv.cli._types fails here).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fastv
from fastv.cli import build_parser, main
from fastv.cli._types import Layout, Names, Number, Numbers, device


def _verbs() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _looks_numeric(action: argparse.Action) -> bool:
    """Numeric by its type, or by a default that is a number (or numbers) whatever the type says."""
    if action.type in (int, float) or isinstance(action.type, Number):
        return True
    values = action.default if isinstance(action.default, list | tuple) else [action.default]
    if isinstance(action.default, str):
        values = action.default.split(",")
    numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    texts = [v for v in values if isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d*)?", v.strip())]
    return bool(values) and action.default is not None and len(numeric) + len(texts) == len(values)


def _numeric_flags() -> list[tuple[str, argparse.Action]]:
    return [(verb, a) for verb, p in _verbs().items() for a in p._actions if a.option_strings and _looks_numeric(a)]


def _flag_id(item: tuple[str, argparse.Action]) -> str:
    return f"{item[0]} {item[1].option_strings[0]}"


def _below_and_above(t: Number) -> list[str]:
    """Values just outside the declared range, computed from the bounds (not from the type's own check)."""
    out = []
    if t.lo is not None:
        out.append(str(t.lo if t.lo_open else t.lo - 1))
    if t.hi is not None:
        out.append(str(t.hi if t.hi_open else t.hi + 1))
    return out


def _valid(t: Number) -> str:
    if t.lo is None:
        return "1"
    value = t.lo + 1 if t.lo_open else t.lo
    if t.hi is not None and value >= t.hi:
        value = (t.lo + t.hi) / 2
    return str(value)


def _bad_values(t: Number) -> list[str]:
    bad = ["x", "", "nan", "inf", "-inf", *_below_and_above(t)]
    if t.kind is int:
        bad.append("1.5")
    if isinstance(t, Numbers):
        bad += [",", f"{_valid(t)},x", *(f"{_valid(t)},{v}" for v in _below_and_above(t))]
    return bad


def _argv(flag: str, action: argparse.Action, value: str) -> list[list[str]]:
    """The bad value as this flag takes it; a 3-value flag gets it in each place, beside valid ones."""
    if action.nargs == 3:
        if value.startswith("-") and not re.fullmatch(r"-\d+|-\d*\.\d+", value):
            return []  # argparse would read it as an option, not as a value
        return [[flag, *[value if i == j else "1" for i in range(3)]] for j in range(3)]
    return [[f"{flag}={value}"]]


def _usage_error(argv: list[str], capsys) -> str:
    """Parse ``fastv ARGV`` the way main does; it must stop there with exit 2 and one line on stderr."""
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)  # parsing only: a value let through fails here, it never runs
    err = capsys.readouterr().err
    assert stopped.value.code == 2, (argv, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, (argv, err)
    return lines[0]


def _main_error(argv: list[str], capsys) -> str:
    """Run ``fastv ARGV`` through main: exit code 2 (never 0, never 1: "a check failed"), one line."""
    try:
        code = main(argv)
    except SystemExit as stopped:
        code = stopped.code
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, (argv, err)
    return lines[0]


def test_the_walk_sees_every_verb_and_their_numeric_flags():
    verbs = _verbs()
    assert {"analyze", "bench", "capacity", "doctor", "eval", "flops", "generate", "show-keep"} <= set(verbs)
    flags = {_flag_id(item) for item in _numeric_flags()}
    assert {"flops --batch", "flops --layout", "capacity --reserve", "eval --ratios", "eval --batch-size"} <= flags


@pytest.mark.parametrize("item", _numeric_flags(), ids=_flag_id)
def test_every_numeric_flag_is_typed_by_the_shared_module(item):
    verb, action = item
    assert isinstance(action.type, Number), f"fastv {verb} {action.option_strings[0]}: use a fastv.cli._types type"
    action.type(_valid(action.type))  # a value in range parses (the type does not refuse everything)
    if isinstance(action.type, Numbers):
        action.type(f"{_valid(action.type)},{_valid(action.type)}")


@pytest.mark.parametrize("item", _numeric_flags(), ids=_flag_id)
def test_every_numeric_flag_refuses_bad_values_in_one_line(item, capsys):
    verb, action = item
    flag = "/".join(action.option_strings)
    for value in _bad_values(action.type):
        for extra in _argv(action.option_strings[0], action, value):
            line = _usage_error([verb, *extra], capsys)
            assert line.startswith(f"fastv {verb}: error: argument {flag}: expected {action.type.describe()}"), line


def _typed(kind: type) -> list[tuple[str, argparse.Action]]:
    return [(verb, a) for verb, p in _verbs().items() for a in p._actions if isinstance(a.type, kind)]


@pytest.mark.parametrize("item", _typed(Names), ids=_flag_id)
@pytest.mark.parametrize("value", ["", ",", "a,,b"])
def test_every_list_of_names_refuses_an_empty_name(item, value, capsys):
    verb, action = item
    line = _usage_error([verb, f"{action.option_strings[0]}={value}"], capsys)
    assert f"argument {action.option_strings[0]}: expected comma-separated names" in line


def _device_flags() -> list[tuple[str, argparse.Action]]:
    return [(verb, a) for verb, p in _verbs().items() for a in p._actions if "--device" in a.option_strings]


def test_every_verb_with_a_device_checks_it():
    assert {verb for verb, _ in _device_flags()} >= {"analyze", "bench", "doctor", "eval", "generate", "show-keep"}
    assert all(action.type is device for _, action in _device_flags())


@pytest.mark.parametrize("item", _device_flags(), ids=_flag_id)
def test_every_device_flag_refuses_an_unknown_or_absent_device(item, capsys, monkeypatch):
    verb, _ = item
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = _usage_error([verb, "--device", "bogus"], capsys)
    assert "argument --device: unknown device 'bogus'; use cpu, cuda, cuda:N, mps or xpu" in line
    line = _usage_error([verb, "--device", "cuda"], capsys)
    assert "argument --device: 'cuda': CUDA is not available" in line and "use --device cpu" in line
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    line = _usage_error([verb, "--device", "cuda:3"], capsys)
    assert "'cuda:3': there are 1 CUDA device(s), numbered from 0; use cuda:0" in line


def test_a_device_that_exists_passes(monkeypatch):
    assert device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert device("cuda") == "cuda" and device("cuda:1") == "cuda:1"


def test_layout_is_the_shared_action_everywhere():
    layouts = [(verb, a) for verb, p in _verbs().items() for a in p._actions if "--layout" in a.option_strings]
    assert {verb for verb, _ in layouts} == {"bench", "capacity", "flops"}
    assert all(isinstance(action, Layout) for _, action in layouts)


# --- the cases the issue lists, through main, exactly as a user types them ----------------------------


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("verb", ["doctor", "eval"])
def test_device_cuda_without_a_gpu(verb, no_gpu, capsys, tmp_path):
    line = _main_error([verb, "--device", "cuda", *_quick(verb, tmp_path)], capsys)
    assert line.startswith(f"fastv {verb}: error: argument --device: 'cuda': CUDA is not available"), line


def test_device_bogus(capsys):
    line = _main_error(["doctor", "--device", "bogus", "--family", "llava"], capsys)
    assert "argument --device: unknown device 'bogus'; use cpu, cuda, cuda:N, mps or xpu" in line


@pytest.mark.parametrize("verb", ["flops", "capacity"])
def test_layout_of_no_tokens(verb, capsys):
    line = _main_error([verb, "--layout", "0", "0", "0"], capsys)
    assert f"fastv {verb}: error: argument --layout: 0 0 0 is a prompt of 0 tokens" in line
    assert "counts >= 0" in line


@pytest.mark.parametrize("verb", ["flops", "capacity"])
def test_layout_that_ends_on_an_image_token(verb, capsys):
    """FastV never drops the last token; counting an image token there as prunable would overstate savings."""
    line = _main_error([verb, "--layout", "3", "5", "0"], capsys)
    assert "argument --layout: 3 5 0 ends on an image token, which FastV never drops" in line
    assert "AFTER >= 1" in line


def test_flops_batch_zero(capsys):
    line = _main_error(["flops", "--batch", "0"], capsys)
    assert line.startswith("fastv flops: error: argument --batch: expected an integer >= 1, got '0'"), line


def _quick(verb: str, tmp_path: Path) -> list[str]:
    """Makes a run that the bad flag let through short, so the test fails fast instead of hanging."""
    if verb == "eval":
        return ["--n", "2", "--no-progress", "--out", str(tmp_path)]
    return ["--family", "llava"] if verb == "doctor" else []


@pytest.mark.parametrize("ratios", ["-0.1", "nan", "0,-0.1", "1", "0.5,,0.75", ""])
def test_eval_ratios_out_of_range(ratios, capsys, tmp_path):
    line = _main_error(["eval", "--ratios", ratios, *_quick("eval", tmp_path)], capsys)
    assert f"argument --ratios: expected comma-separated values, each a number in [0, 1), got {ratios!r}" in line


@pytest.mark.parametrize(("flag", "value", "valid"), [("--reserve", "-1", "a number in [0, 1)"),
                                                      ("--output-tokens", "-100", "an integer >= 0"),
                                                      ("--gpu-memory-gb", "0", "a number > 0")])  # fmt: skip
def test_capacity_values_that_printed_numbers(flag, value, valid, capsys):
    line = _main_error(["capacity", f"{flag}={value}"], capsys)
    assert f"fastv capacity: error: argument {flag}: expected {valid}, got {value!r}" in line


def test_eval_batch_size_zero(capsys, tmp_path):
    line = _main_error(["eval", "--batch-size", "0", *_quick("eval", tmp_path)], capsys)
    assert "argument --batch-size: expected an integer >= 1, got '0'" in line


@pytest.mark.parametrize("attn", [",", "", "sdpa,foo"])
def test_doctor_attn_without_a_known_backend(attn, capsys):
    line = _main_error(["doctor", "--attn", attn, "--family", "llava"], capsys)
    assert line.startswith("fastv doctor: error: argument --attn: ")
    assert "(choose from sdpa, eager, flash_attention_2)" in line


def test_valid_values_still_run(capsys):
    assert main(["flops", "--layout", "35", "576", "1", "--batch", "2", "--ratio", "0.5", "--json"]) == 0
    assert '"n_hat"' in capsys.readouterr().out
    assert main(["capacity", "--layout", "35", "576", "1", "--reserve", "0", "--output-tokens", "0", "--json"]) == 0
    assert '"requests"' in capsys.readouterr().out


def test_the_installed_command_exits_2_in_one_line():
    """The real entry point (not main in-process): exit code 2, one line, no traceback."""
    source = Path(fastv.__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": str(source), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "fastv", "doctor", "--device", "bogus"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "fastv doctor: error: argument --device: unknown device 'bogus'; use cpu, cuda, cuda:N, mps or xpu "
        "(see fastv doctor --help)"
    ]
