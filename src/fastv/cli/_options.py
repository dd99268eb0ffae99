"""Options several sub-commands share (a leading underscore: not a sub-command)."""

from __future__ import annotations

import argparse

MODEL_HELP = "a local checkpoint folder, or a built-in model: easyvqa-llava (default), clevr-smollm2"


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help=MODEL_HELP)
