"""Evaluating FastV settings on VQA data: datasets, the runner, and its report (table, JSON, plot)."""

from fastv.eval.datasets import DATASETS, VQASample, load_dataset, load_easyvqa, load_jsonl
from fastv.eval.runner import Setting, evaluate, evaluate_baseline, is_correct, normalize_answer, settings_for

__all__ = [
    "DATASETS",
    "Setting",
    "VQASample",
    "evaluate",
    "evaluate_baseline",
    "is_correct",
    "load_dataset",
    "load_easyvqa",
    "load_jsonl",
    "normalize_answer",
    "settings_for",
]
