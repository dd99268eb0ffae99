"""Train the built-in easy-VQA LLaVA on the CPU: ``python -m fastv.builtin.train --out DIR``.

Deterministic for a given seed and thread count: seeded init, seeded shuffling and flips, no
data-loader workers. Only the answer word and ``</s>`` carry loss. Sequences are left-padded
with position ids from the attention mask, exactly as ``generate`` will see them.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from fastv.builtin.card import write_card
from fastv.builtin.labels import IGNORE, answer_kind, image_labels
from fastv.builtin.model import PRESETS, ModelSize, build_model
from fastv.builtin.pretrain import lr_at, pretrain_vision
from fastv.builtin.text import IMAGE_TOKEN, build_processor, build_prompt, build_tokenizer, vocabulary
from fastv.eval.datasets import VQASample, load_easyvqa


@dataclass
class Encoded:
    """Training set as tensors: one pixel tensor per distinct image, token ids per question."""

    paths: list[str]  # distinct images, sorted
    pixels: torch.Tensor  # (n_images, 3, H, W)
    image_index: torch.Tensor  # (n_questions,)
    ids: list[torch.Tensor]  # prompt + answer + </s>
    kinds: list[str]  # shape / color / yes/no, for progress checks


def encode(samples: list[VQASample], processor, size: ModelSize) -> Encoded:
    """Run the processor's own image and text code once, so training inputs equal inference inputs."""
    tok = processor.tokenizer
    paths = sorted({str(s.image) for s in samples})
    where = {p: i for i, p in enumerate(paths)}
    images = [VQASample(p, "", ()).load_image() for p in paths]
    pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
    expand = IMAGE_TOKEN * size.n_image_tokens
    ids = []
    for s in samples:
        prompt = tok(build_prompt(s.question).replace(IMAGE_TOKEN, expand))["input_ids"]
        answer = tok(s.answers[0], add_special_tokens=False)["input_ids"]
        if len(answer) != 1:
            raise ValueError(f"answer {s.answers[0]!r} is not one token of the word-level vocabulary")
        ids.append(torch.tensor([*prompt, *answer, tok.eos_token_id]))
    index = torch.tensor([where[str(s.image)] for s in samples])
    kinds = [answer_kind(s.answers[0]) for s in samples]
    return Encoded(paths, pixels, index, ids, kinds)


def collate(data: Encoded, idx: torch.Tensor, pad_id: int, flip: torch.Tensor) -> dict[str, torch.Tensor]:
    """Left-padded batch; labels only on the last two tokens (answer, ``</s>``)."""
    seqs = [data.ids[i] for i in idx.tolist()]
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_id)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        input_ids[row, width - len(s) :] = s
        mask[row, width - len(s) :] = 1
    labels = torch.full_like(input_ids, -100)
    labels[:, -2:] = input_ids[:, -2:]
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    pixels = data.pixels[data.image_index[idx]]
    pixels = torch.where(flip[:, None, None, None], pixels.flip(-1), pixels)
    return {
        "input_ids": input_ids,
        "attention_mask": mask,
        "position_ids": position_ids,
        "pixel_values": pixels,
        "labels": labels,
    }


def answer_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of the answer word and ``</s>`` only (the lm_head runs on 2 positions, not all)."""
    labels = batch.pop("labels")[:, -2:]
    logits = model(**batch, logits_to_keep=3).logits[:, :2].float()
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="none")  # (B, 2)
    return ce[:, 0].mean() / 2 + ce[:, 1].mean() / 2  # this exact form produced the shipped weights


@torch.no_grad()
def answer_accuracy(model, data: Encoded, pad_id: int, batch_size: int = 128) -> dict[str, float]:
    """Teacher-forced check used while training: is the argmax at the answer slot the answer? By kind."""
    model.eval()
    hits: list[bool] = []
    no_flip = torch.zeros(batch_size, dtype=torch.bool)
    for start in range(0, len(data.ids), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data.ids)))
        batch = collate(data, idx, pad_id, no_flip[: len(idx)])
        labels = batch.pop("labels")
        logits = model(**batch, logits_to_keep=3).logits
        hits += (logits[:, -3].argmax(-1) == labels[:, -2]).tolist()
    model.train()
    out = {"all": sum(hits) / len(hits)}
    for kind in ("shape", "color", "yes/no"):
        sel = [h for h, k in zip(hits, data.kinds, strict=True) if k == kind]
        if sel:
            out[kind] = sum(sel) / len(sel)
    return out


def param_groups(model, weight_decay: float, vision_lr_scale: float) -> list[dict]:
    """No decay on norms, biases, embeddings; a smaller step (or none) for the pre-trained vision tower."""
    groups: dict[tuple[bool, bool], list] = {}
    if vision_lr_scale == 0:  # frozen: no vision-tower backward pass at all
        model.model.vision_tower.requires_grad_(False)
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = (p.ndim >= 2 and "embed" not in name, "vision_tower" in name)
        groups.setdefault(key, []).append(p)
    return [
        {"params": ps, "weight_decay": weight_decay if decays else 0.0, "lr_scale": vision_lr_scale if vis else 1.0}
        for (decays, vis), ps in groups.items()
    ]


def train(args: argparse.Namespace) -> dict:
    """Build tokenizer, processor and model; train; return the run's metadata for the card."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    size = PRESETS[args.preset]
    full_train = load_easyvqa("train")  # the vocabulary never depends on --train-n, and never on test data
    words = vocabulary([s.question for s in full_train] + [a for s in full_train for a in s.answers])
    train_set = load_easyvqa("train", n=args.train_n, seed=args.seed)
    tokenizer = build_tokenizer(words)
    processor = build_processor(tokenizer, size.image_size, size.patch_size)
    model = build_model(size, tokenizer)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters, {size.n_image_tokens} image tokens per image")

    t0 = time.perf_counter()
    data = encode(train_set, processor, size)
    check = encode(load_easyvqa("test", n=args.check_n, seed=args.seed), processor, size)
    print(f"encoded {len(data.ids)} training questions in {time.perf_counter() - t0:.1f}s")

    gen = torch.Generator().manual_seed(args.seed)
    t_start = time.perf_counter()
    if args.vision_steps:
        found = image_labels(train_set)
        labels = torch.tensor([found.get(p, (IGNORE, IGNORE)) for p in data.paths])
        print(f"stage 1: vision tower on shape/colour labels of {int((labels != IGNORE).any(1).sum())} images")
        pretrain_vision(
            model,
            data.pixels,
            labels,
            args.vision_steps,
            args.batch_size,
            args.lr,
            gen,
            args.log_every,
        )
    opt = torch.optim.AdamW(param_groups(model, args.weight_decay, args.vision_lr_scale), lr=args.lr, betas=(0.9, 0.98))
    print("stage 2: LLaVA end to end, loss on the answer")
    order = torch.randperm(len(data.ids), generator=gen)
    cursor, running = 0, 0.0
    warmup = max(1, int(0.05 * args.steps))
    for step in range(args.steps):
        if cursor + args.batch_size > len(order):
            order, cursor = torch.randperm(len(data.ids), generator=gen), 0
        idx = order[cursor : cursor + args.batch_size]
        cursor += args.batch_size
        flip = torch.rand(len(idx), generator=gen) < 0.5
        batch = collate(data, idx, tokenizer.pad_token_id, flip)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, warmup) * group["lr_scale"]
        loss = answer_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        running = loss.item() if step == 0 else 0.95 * running + 0.05 * loss.item()
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            elapsed = time.perf_counter() - t_start
            msg = f"step {step + 1}/{args.steps}  loss {running:.4f}  {elapsed:.0f}s"
            if args.check_every and ((step + 1) % args.check_every == 0 or step + 1 == args.steps):
                accs = answer_accuracy(model, check, tokenizer.pad_token_id)
                msg += "  test-check " + " ".join(f"{k} {v:.3f}" for k, v in accs.items())
            print(msg, flush=True)
    train_seconds = time.perf_counter() - t_start
    model.eval()
    return {
        "model": model,
        "processor": processor,
        "size": size,
        "n_params": n_params,
        "train_questions": len(data.ids),
        "train_images": len(data.pixels),
        "train_seconds": train_seconds,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fastv.builtin.train", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="directory for save_pretrained output")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--vision-steps", type=int, default=500, help="stage 1 steps (0: skip)")
    p.add_argument("--vision-lr-scale", type=float, default=0.0, help="stage 2 lr of the vision tower (0: frozen)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--train-n", type=int, default=None, help="train on a seeded subset (tests)")
    p.add_argument("--check-n", type=int, default=512, help="test questions for the progress check")
    p.add_argument("--check-every", type=int, default=300)
    p.add_argument("--eval-n", type=int, default=None, help="test questions for the final accuracy (all)")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads; 1 is reproducible bit for bit and robust on a busy CPU"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    run = train(args)
    model, processor = run["model"], run["processor"]
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    result = {}
    if args.eval_n != 0:
        from fastv.eval.runner import evaluate_baseline

        result = evaluate_baseline(model, processor, load_easyvqa("test", n=args.eval_n, seed=args.seed))
        print(f"test accuracy (generate, exact match): {result['accuracy']:.4f} on {result['n']} questions")
    meta = {k: v for k, v in run.items() if k not in ("model", "processor", "size")}
    meta |= {"args": {k: str(v) for k, v in vars(args).items()}, "test": result}
    meta["wall_seconds"] = time.perf_counter() - started
    (args.out / "training_run.json").write_text(json.dumps(meta, indent=2) + "\n")
    write_card(args.out, run["size"], meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
