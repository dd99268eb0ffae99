"""Which image tokens each ranker keeps on the Sort-of-CLEVR testbed, and whether the answer survives.

python benchmarks/testbed_kept_objects.py [--n 400] [--k 2 3 5] [--out runs/testbed/kept_objects.json]

On clevr-smollm2 every fact of an object sits on one image token of that object (fastv.testbed.targets),
so each question has known answer tokens: the asked object's tokens that carry the asked fact. For each
setting this prints, over the same questions `fastv eval --n N` samples (same batches, bf16, greedy,
4 new tokens, so its accuracies reproduce eval's): the share of kept image tokens that lie on an object,
how often an answer token and the asked object's colour token survive, and the accuracy with and
without a surviving answer token. Pruning can only hurt through the tokens it drops; this says which.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

import fastv
from fastv.eval.datasets import load_dataset
from fastv.eval.runner import generate_answers, is_correct, kept_image_offsets, prepare_batches
from fastv.loading import load_model
from fastv.sortofclevr import ensure_split
from fastv.sortofclevr.scene import from_description, patch_owners
from fastv.testbed.model import N_IMAGE_TOKENS, PATCH_SIZE
from fastv.testbed.targets import FACT_OF_WORD, patch_words


@dataclass(frozen=True)
class QuestionTokens:
    """Image-token offsets that matter for one question (from the scene stored beside it)."""

    objects: set[int]  # on any object
    answer: set[int]  # the asked object's tokens carrying the asked fact
    colour: set[int]  # the asked object's colour tokens

    @classmethod
    def of(cls, record: dict) -> QuestionTokens:
        scene = from_description(record["scene"])
        owners = patch_owners(scene, PATCH_SIZE).tolist()
        facts = [FACT_OF_WORD[w] for w in patch_words(scene, PATCH_SIZE)]
        asked = next(i for i, o in enumerate(scene) if o.color == record["color"])
        on_asked = [t for t, owner in enumerate(owners) if owner == asked]
        return cls(
            objects={t for t, owner in enumerate(owners) if owner >= 0},
            answer={t for t in on_asked if facts[t] == record["type"]},
            colour={t for t in on_asked if facts[t] == "color"},
        )

    def background_mask(self) -> torch.Tensor:
        return torch.tensor([t not in self.objects for t in range(N_IMAGE_TOKENS)])


def budget_of(spec: str) -> dict:
    """``R50`` -> ``{"ratio": 0.5}``; ``keep16`` -> ``{"keep": 16}`` (the labels `fastv eval` prints)."""
    if spec.startswith("keep"):
        return {"keep": int(spec[4:])}
    if spec.startswith("R"):
        return {"ratio": int(spec[1:]) / 100}
    raise SystemExit(f"budget {spec!r}: write R<percent dropped> (R50) or keep<tokens> (keep16)")


def share(hits: list[bool]) -> float:
    return sum(hits) / len(hits) if hits else float("nan")


def swap_background(model, word: str | None, tokenizer) -> dict:
    """Intervention: the projector's output at background tokens replaced by ``word``'s input embedding
    (``"zero"``: a zero vector; ``None``: as trained, the "." embedding). Returns the state whose
    ``"mask"`` the caller sets per batch."""
    state: dict = {"mask": None}
    if word is None:
        return state
    if word == "zero":
        vector = torch.zeros(model.config.text_config.hidden_size)
    else:
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise SystemExit(f"--background-as {word!r} is {len(ids)} tokens; give one token (e.g. ' the')")
        vector = model.get_input_embeddings().weight[ids[0]].detach()

    def hook(module, inputs, output):
        mask = state["mask"][..., None]
        return torch.where(mask, vector.to(output.dtype), output)

    model.model.multi_modal_projector.register_forward_hook(hook)
    return state


def evaluate(model, processor, batches, tokens: dict[str, QuestionTokens], config, swap: dict) -> dict:
    """One setting (``config`` None: unpruned) over every batch: accuracy and what survived."""
    image_id = model.config.image_token_id
    hits, on_object, answer_kept, colour_kept = [], [], [], []
    if config is not None:
        fastv.apply(model, config)
    try:
        for batch in batches:
            swap["mask"] = torch.stack([tokens[s.id].background_mask() for s in batch.samples])
            answers = generate_answers(model, processor, batch, max_new_tokens=4)
            everything = [set(range(N_IMAGE_TOKENS))] * len(answers)
            kept_sets = kept_image_offsets(model, batch, image_id) if config else everything
            for sample, pred, kept in zip(batch.samples, answers, kept_sets, strict=True):
                needed = tokens[sample.id]
                hits.append(is_correct(pred, sample.answers))
                on_object.append(len(kept & needed.objects) / len(kept))
                answer_kept.append(bool(kept & needed.answer))
                colour_kept.append(bool(kept & needed.colour))
    finally:
        if config is not None:
            fastv.remove(model)
    return {
        "n": len(hits),
        "accuracy": share(hits),
        "kept_on_objects": statistics.mean(on_object),
        "answer_token_kept": share(answer_kept),
        "colour_token_kept": share(colour_kept),
        "accuracy_answer_kept": share([h for h, a in zip(hits, answer_kept, strict=True) if a]),
        "accuracy_answer_lost": share([h for h, a in zip(hits, answer_kept, strict=True) if not a]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--k", type=int, nargs="+", default=[2, 3, 5])
    p.add_argument("--budgets", nargs="+", default=["R50", "keep16"], help="R<percent dropped> or keep<tokens>")
    p.add_argument("--rank", nargs="+", default=["last_token", "mean", "random"])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--background-as", default=None, help="intervention: a one-token word, or 'zero'")
    p.add_argument("--out", type=Path, default=Path("runs/testbed/kept_objects.json"))
    args = p.parse_args()
    torch.manual_seed(0)
    model, processor = load_model("clevr-smollm2", "cpu", "bfloat16")
    swap = swap_background(model, args.background_as, processor.tokenizer)
    records = {r["id"]: r for r in map(json.loads, ensure_split("test").read_text().splitlines())}
    samples = load_dataset("sortofclevr", n=args.n, seed=0)
    tokens = {s.id: QuestionTokens.of(records[s.id]) for s in samples}
    batches = prepare_batches(model, processor, samples, args.batch_size)
    print(f"{len(samples)} questions; image tokens per question {N_IMAGE_TOKENS}, of them on objects (median): "
          f"{statistics.median(len(t.objects) for t in tokens.values())}; "
          f"background as {args.background_as or 'trained (.)'}")  # fmt: skip
    header = f"{'setting':<24}{'acc':>7}{'on object':>11}{'answer kept':>13}{'colour kept':>13}"
    print(header + f"{'acc | kept':>12}{'acc | lost':>12}")
    settings = [(None, "baseline")] + [
        (fastv.FastVConfig(k=k, rank=rank, **budget_of(budget)), f"K{k} {budget} {rank}")
        for k in args.k
        for budget in args.budgets
        for rank in args.rank
    ]
    rows = []
    for config, label in settings:
        row = {"setting": label, "background_as": args.background_as}
        row |= evaluate(model, processor, batches, tokens, config, swap)
        rows.append(row)
        print(f"{label:<24}{row['accuracy']:>7.3f}{row['kept_on_objects']:>11.3f}"
              f"{row['answer_token_kept']:>13.3f}{row['colour_token_kept']:>13.3f}"
              f"{row['accuracy_answer_kept']:>12.3f}{row['accuracy_answer_lost']:>12.3f}", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
