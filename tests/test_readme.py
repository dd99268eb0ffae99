"""The README's test command is the one CI runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    command = ci_lines[-1]
    assert "python -m pytest" in command and "torch==2.13.0" in command
    assert command in (ROOT / "README.md").read_text()
