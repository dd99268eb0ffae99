"""Accuracy / time / FLOPs of FastV settings on a VQA dataset, one model, batched ``generate``.

Every setting sees the same pre-processed batches (left-padded, greedy decoding), so settings
differ only in what FastV prunes. Ratio 0 is the baseline and runs with FastV *not* applied.
"""

from __future__ import annotations

import math
import re
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import fastv
from fastv.config import FastVConfig
from fastv.eval import distributed
from fastv.eval.datasets import VQASample
from fastv.measure.flops import flops
from fastv.measure.presets import Layout

DEFAULT_PROMPT = "<image> Question: {question} Answer:"  # used when the processor has no chat template
BASELINE = "baseline"
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """VQA-style normalisation: first line, lower case, no punctuation or articles, single spaces."""
    text = text.strip().split("\n", 1)[0].lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def is_correct(prediction: str, answers: Sequence[str]) -> bool:
    """Exact match after normalising, against any accepted answer."""
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(a) for a in answers)


@dataclass(frozen=True)
class Setting:
    """One evaluated point; ``rank is None`` is the unpruned baseline; ``keep`` (a token budget) overrides ``ratio``."""

    k: int
    ratio: float
    rank: str | None
    seed: int = 0
    keep: int | None = None

    def fastv_config(self) -> FastVConfig | None:
        if self.rank is None:
            return None
        return FastVConfig(k=self.k, ratio=self.ratio, keep=self.keep, rank=self.rank, seed=self.seed)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        if self.rank is None:
            return BASELINE
        amount = f"keep{self.keep}" if self.keep is not None else f"R{round(self.ratio * 100)}"
        return f"K{self.k} {amount} {self.rank}"


def settings_for(
    k: int | Sequence[int],
    ratios: Sequence[float],
    rankers: Sequence[str],
    seed: int = 0,
    keeps: Sequence[int] = (),
) -> list[Setting]:
    """Baseline once (for ratio 0), then for every K: every (ratio > 0, ranker) and (keep budget, ranker) pair."""
    ks = [k] if isinstance(k, int) else list(k)
    out = [Setting(ks[0], 0.0, None, seed)] if any(r == 0 for r in ratios) or not (ratios or keeps) else []
    for k_ in ks:
        out += [Setting(k_, float(r), rank, seed) for r in ratios if r > 0 for rank in rankers]
        out += [Setting(k_, 0.0, rank, seed, keep=int(n)) for n in keeps for rank in rankers]
    return out


@dataclass
class Batch:
    """Processor output for a slice of the dataset, plus each sample's (before, image, after) layout."""

    samples: list[VQASample]
    inputs: dict[str, torch.Tensor]
    layouts: list[Layout]


def _image_token_id(model: Any) -> int:
    cfg = model.config
    for attr in ("image_token_id", "image_token_index"):
        value = getattr(cfg, attr, None)
        if value is not None:
            return int(value)
    raise ValueError(f"{type(model).__name__}'s config has no image_token_id; cannot locate image tokens.")


def _layout(ids: torch.Tensor, mask: torch.Tensor, image_id: int) -> Layout:
    real = ids[mask.bool()]
    where = (real == image_id).nonzero().flatten()
    if len(where) == 0:
        return Layout(len(real), 0, 0)
    first, last = int(where[0]), int(where[-1])
    return Layout(first, len(where), len(real) - last - 1)


def resolve_prompt(processor: Any, prompt: str | Callable[[str], str] | None = None) -> Callable[[str], str]:
    """Question -> prompt text: an explicit template (with ``{question}``) or callable, else the
    processor's chat template (one image, then the question), else :data:`DEFAULT_PROMPT`."""
    if callable(prompt):
        return prompt
    if prompt is not None:
        return lambda q: prompt.format(question=q)
    if getattr(processor, "chat_template", None):

        def chat(question: str) -> str:
            content = [{"type": "image"}, {"type": "text", "text": question}]
            return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)

        return chat
    return lambda q: DEFAULT_PROMPT.format(question=q)


def prepare_batches(
    model: Any,
    processor: Any,
    samples: Sequence[VQASample],
    batch_size: int,
    prompt: str | Callable[[str], str] | None = None,
) -> list[Batch]:
    """Pre-process once; left padding so every sample's prompt ends where generation starts."""
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    render = resolve_prompt(processor, prompt)
    image_id = _image_token_id(model)
    batches = []
    for start in range(0, len(samples), batch_size):
        chunk = list(samples[start : start + batch_size])
        inputs = processor(
            images=[s.load_image() for s in chunk],
            text=[render(s.question) for s in chunk],
            return_tensors="pt",
            padding=True,
        )
        inputs = dict(inputs)
        layouts = [_layout(i, m, image_id) for i, m in zip(inputs["input_ids"], inputs["attention_mask"], strict=True)]
        batches.append(Batch(chunk, inputs, layouts))
    return batches


@torch.inference_mode()
def generate_answers(model: Any, processor: Any, batch: Batch, max_new_tokens: int = 8) -> list[str]:
    """Greedy answers for one batch, decoded from the new tokens only."""
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    inputs = {k: v.to(device) for k, v in batch.inputs.items()}
    if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
        inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new = out[:, inputs["input_ids"].shape[1] :]
    return processor.tokenizer.batch_decode(new, skip_special_tokens=True)


def kept_image_offsets(model: Any, batch: Batch, image_id: int) -> list[set[int]]:
    """Per sample, which of its image tokens FastV kept, as offsets into them (0 = the first image
    token), read back from ``fastv.last_keep`` (not computed)."""
    kept = []
    for positions, ids, mask in zip(
        fastv.last_keep(model), batch.inputs["input_ids"], batch.inputs["attention_mask"], strict=True
    ):
        image_positions = (ids[mask.bool()] == image_id).nonzero().squeeze(1)
        kept.append(set(torch.isin(image_positions, positions.cpu()).nonzero().squeeze(1).tolist()))
    return kept


def flops_ratios(model: Any, layouts: Sequence[Layout], setting: Setting) -> tuple[float, float]:
    """Prefill FLOPs share of the language model: the paper's Eq. 5 (R on image tokens only, as FastV's
    code does) and the exact matmul count of this architecture (SwiGLU, GQA, last-position lm_head)."""
    config = setting.fastv_config()
    if config is None:
        return 1.0, 1.0
    report = flops(model, list(layouts), config)
    return float(report.eq5_ratio), float(report.exact_ratio)


def run_setting(
    model: Any,
    processor: Any,
    batches: Sequence[Batch],
    setting: Setting,
    max_new_tokens: int = 8,
    on_batch: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Evaluate one setting: apply FastV (unless baseline), generate every batch, remove FastV."""
    config = setting.fastv_config()
    image_id = _image_token_id(model)
    if fastv.is_applied(model):
        fastv.remove(model)
    if config is not None:
        fastv.apply(model, config)
    seconds, kept, predictions = 0.0, [], []
    try:
        for batch in batches:
            start = time.perf_counter()
            answers = generate_answers(model, processor, batch, max_new_tokens)
            seconds += time.perf_counter() - start
            if config is not None:
                kept += [len(offsets) for offsets in kept_image_offsets(model, batch, image_id)]
            for sample, pred in zip(batch.samples, answers, strict=True):
                ok = is_correct(pred, sample.answers)
                predictions.append({"id": sample.id, "kind": sample.kind, "prediction": pred.strip(), "correct": ok})
            if on_batch is not None:
                on_batch()
    finally:
        if config is not None:
            fastv.remove(model)
    layouts = [lay for b in batches for lay in b.layouts]
    per_question = list(zip(predictions, layouts, kept or [None] * len(layouts), strict=True))
    # Data-parallel launch: every rank's questions, back in unsharded order (a no-op for one process).
    per_question, seconds = distributed.gather_interleaved(per_question), distributed.gather_max(seconds)
    return _result(model, setting, per_question, seconds)


def _result(model: Any, setting: Setting, per_question: list[tuple], seconds: float) -> dict[str, Any]:
    """One setting's figures from its per-question (prediction, layout, kept image tokens or None) records."""
    predictions = [prediction for prediction, _, _ in per_question]
    layouts = [layout for _, layout, _ in per_question]
    kept = [count for _, _, count in per_question if count is not None]
    eq5, exact = flops_ratios(model, layouts, setting)
    n = len(predictions)
    correct = sum(p["correct"] for p in predictions)
    n_img = [lay.image for lay in layouts]
    return {
        "setting": setting.label,
        "k": setting.k,
        "ratio": setting.ratio,
        "keep": setting.keep,
        "rank": setting.rank or BASELINE,
        "n": n,
        "correct": correct,
        "accuracy": correct / n if n else float("nan"),
        "stderr": standard_error(correct, n),
        "by_kind": accuracy_by_kind(predictions),
        "time_s": seconds,
        "samples_per_s": n / seconds if seconds else float("nan"),
        "flops_ratio": eq5,
        "flops_ratio_exact": exact,
        "image_tokens": sum(n_img) / n if n else 0.0,
        "kept_image_tokens": (sum(kept) / len(kept)) if kept else (sum(n_img) / n if n else 0.0),
        "predictions": predictions,
    }


def standard_error(correct: int, n: int) -> float:
    """Binomial standard error of an accuracy, sqrt(p (1 - p) / n)."""
    return math.sqrt(correct / n * (1 - correct / n) / n) if n else float("nan")


def accuracy_by_kind(predictions: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``{question type: {n, correct, accuracy, stderr}}`` for samples that carry a type."""
    out: dict[str, dict[str, float]] = {}
    for kind in dict.fromkeys(p["kind"] for p in predictions if p.get("kind")):
        hits = [p["correct"] for p in predictions if p.get("kind") == kind]
        out[kind] = {
            "n": len(hits),
            "correct": sum(hits),
            "accuracy": sum(hits) / len(hits),
            "stderr": standard_error(sum(hits), len(hits)),
        }
    return out


def evaluate(
    model: Any,
    processor: Any,
    samples: Sequence[VQASample],
    k: int | Sequence[int] = 2,
    ratios: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 0.9),
    rankers: Sequence[str] = ("last_token", "mean", "random"),
    keeps: Sequence[int] = (),
    batch_size: int = 16,
    seed: int = 0,
    prompt: str | Callable[[str], str] | None = None,
    max_new_tokens: int = 8,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """All settings on the same batches; one result dict per setting (see :func:`run_setting`).

    Under ``torchrun`` / ``accelerate launch`` each rank runs a shard and every rank returns the results
    of all questions.
    """
    settings = settings_for(k, ratios, rankers, seed, keeps)
    batches = prepare_batches(model, processor, distributed.shard(samples), batch_size, prompt)
    if batches:  # warm-up: one-off costs (allocations, lazy init) must not land on the first setting's time
        generate_answers(model, processor, batches[0], max_new_tokens=1)
    results = []
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress or distributed.world()[0] != 0, transient=False) as bar:
        for setting in settings:
            task = bar.add_task(setting.label, total=len(batches))
            result = run_setting(model, processor, batches, setting, max_new_tokens, lambda t=task: bar.advance(t))
            bar.update(task, description=f"{setting.label} {result['accuracy']:.3f}")
            results.append(result)
    return results


def evaluate_baseline(
    model: Any, processor: Any, samples: Sequence[VQASample], batch_size: int = 64, **kwargs: Any
) -> dict[str, Any]:
    """Unpruned accuracy only (what the model card reports)."""
    return evaluate(model, processor, samples, ratios=(0.0,), rankers=(), batch_size=batch_size, **kwargs)[0]


def summary(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results without the per-sample predictions, and accuracy relative to the baseline."""
    base = next((r["accuracy"] for r in results if r["rank"] == BASELINE), None)
    rows = []
    for r in results:
        row = {key: val for key, val in r.items() if key != "predictions"}
        row["relative_accuracy"] = r["accuracy"] / base if base else None
        rows.append(row)
    return rows
