"""The README's commands are the ones CI runs, on the locked stack."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _readme_test_command() -> str:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    marker = next(i for i, line in enumerate(lines) if line.startswith("# --- README test command"))
    return lines[marker + 1]


def test_ci_runs_the_readme_test_command_first():
    command = _readme_test_command()
    assert "python -m pytest" in command and "-r locks/newest.txt" in command
    assert command in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index(command) < ci.index(".ci/stack oldest") < ci.index(".ci/wheel")


def test_every_install_line_uses_the_distribution_name():
    """PyPI's `fastv` is another project: no README line may tell users to install it."""
    for line in README.splitlines():
        if "pip install" in line and "fastv" in line.split("pip install", 1)[1].split("&&")[0]:
            assert "fastv-vlm" in line, line
