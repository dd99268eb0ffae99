"""The ``fastv_easyvqa`` task's functions (the generated task folder's ``utils.py`` re-exports them).

Metrics: ``exact_match`` (the answer word, case-insensitive) and ``flops_pct``, the share of
prefill FLOPs that FastV left, over the documents of this task, read from the model's ledger
(100 for models that do not record FLOPs, i.e. anything unpruned).
"""

from __future__ import annotations

import re
from typing import Any

from PIL import Image

from fastv.integrations.lmms_eval import ledger

TASK = "fastv_easyvqa"
_WORD = re.compile(r"[a-z]+")


def doc_to_visual(doc: dict[str, Any]) -> list[Image.Image]:
    with Image.open(doc["image"]) as im:
        return [im.convert("RGB")]


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, Any] | None = None) -> str:
    """``Question: ... Answer:``, the built-in model's format; the model adds the image placeholder."""
    kw = lmms_eval_specific_kwargs or {}
    return f"{kw.get('pre_prompt', '')}Question: {doc['question']} Answer:{kw.get('post_prompt', '')}"


def doc_to_target(doc: dict[str, Any]) -> str:
    return doc["answer"]


def normalize(text: str) -> str:
    """First word, lower-cased: 'Circle.' and 'circle </s>' both count as 'circle'."""
    words = _WORD.findall(text.lower())
    return words[0] if words else ""


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    item = ledger.doc_flops(TASK, doc["doc_id"])
    flops = (item.baseline, item.pruned) if item is not None else (1, 1)
    return {"exact_match": float(normalize(results[0]) == doc["answer"].lower()), "flops_pct": flops}


def flops_pct(items: list[tuple[int, int]]) -> float:
    """Aggregate as a ratio of sums (longer prompts weigh more), not a mean of per-prompt ratios."""
    base = sum(b for b, _ in items)
    return 100.0 * sum(p for _, p in items) / base if base else 100.0


def doc_to_choice(doc: dict[str, Any]) -> list[str]:
    return list(doc["choices"])


def doc_to_target_index(doc: dict[str, Any]) -> int:
    return list(doc["choices"]).index(doc["answer"])


def process_results_mc(doc: dict[str, Any], results: list[tuple[float, bool]]) -> dict[str, Any]:
    """Accuracy of the highest log-likelihood answer, plus FLOPs summed over the 13 scored prompts."""
    lls = [float(r[0]) for r in results]
    item = ledger.doc_flops(f"{TASK}_mc", doc["doc_id"])
    flops = (item.baseline, item.pruned) if item is not None else (1, 1)
    return {"acc": float(lls.index(max(lls)) == doc_to_target_index(doc)), "flops_pct": flops}
