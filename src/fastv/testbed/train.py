"""Train the Sort-of-CLEVR testbed on the CPU: ``python -m fastv.testbed.train --out DIR``.

Stage 1 trains the vision tower alone on per-patch targets (see :mod:`fastv.testbed.targets`).
Stage 2 freezes it and trains the LLaVA projector plus LoRA adapters on SmolLM2 on the answers,
with the loss on the answer tokens and ``<|im_end|>`` only, under bfloat16 autocast.
Deterministic for a seed and thread count; each stage seeds itself, so running stage 2 from a
saved stage-1 file (``--vision-from``) gives the same weights as one run.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fastv.builtin.pretrain import lr_at as warmup_cosine
from fastv.sortofclevr.files import SPLITS, scenes
from fastv.sortofclevr.scene import render
from fastv.testbed.model import (
    END_OF_TURN,
    IMAGE_TOKEN,
    LORA,
    LORA_PREFIX,
    N_IMAGE_TOKENS,
    PATCH_SIZE,
    build_processor,
    build_vlm,
    prompt,
)
from fastv.testbed.smollm2 import load_language_model
from fastv.testbed.targets import ATTRIBUTES, IGNORE, patch_targets

VISION_PREFIX = "model.vision_tower."
PROJECTOR_PREFIX = "model.multi_modal_projector."


@dataclass
class Encoded:
    pixels: torch.Tensor  # (scenes, 3, H, W), CLIP-normalised by the processor
    targets: torch.Tensor  # (scenes, patches, attributes)
    scene: torch.Tensor  # (questions,) scene index of each question
    ids: list[torch.Tensor]  # prompt with 144 <image> tokens, then answer and <|im_end|>
    answer_len: list[int]
    kinds: list[str]


def encode(split: str, n_scenes: int, processor: Any, seed: int) -> Encoded:
    """Render and tokenise once, with the processor's own code (training inputs = inference inputs)."""
    tok = processor.tokenizer
    images, targets, scene_of, ids, answer_len, kinds = [], [], [], [], [], []
    for i, scene, questions in scenes(split, n_scenes, seed):
        images.append(render(scene))
        targets.append(torch.from_numpy(patch_targets(scene, PATCH_SIZE)))
        for q in questions:
            text = prompt(q.text).replace(IMAGE_TOKEN, IMAGE_TOKEN * N_IMAGE_TOKENS)
            answer = tok(q.answer + END_OF_TURN, add_special_tokens=False)["input_ids"]
            ids.append(torch.tensor(tok(text, add_special_tokens=False)["input_ids"] + answer))
            answer_len.append(len(answer))
            scene_of.append(i)
            kinds.append(q.kind)
    pixels = torch.cat(
        [
            processor.image_processor(images=images[s : s + 512], return_tensors="pt")["pixel_values"]
            for s in range(0, len(images), 512)
        ]
    )
    return Encoded(pixels, torch.stack(targets), torch.tensor(scene_of), ids, answer_len, kinds)


def lr_at(step: int, steps: int, peak: float) -> float:
    """5% linear warm-up, then cosine decay to 5% of the peak (the built-in model's schedule)."""
    return warmup_cosine(step, steps, peak, warmup=max(1, steps // 20))


def patch_features(vlm: Any, pixels: torch.Tensor) -> torch.Tensor:
    """What LLaVA projects: the vision tower's last hidden state without CLS."""
    return vlm.model.vision_tower(pixel_values=pixels, output_hidden_states=True).hidden_states[-1][:, 1:]


def train_vision(vlm: Any, data: Encoded, steps: int, batch_size: int, lr: float, seed: int, log_every: int) -> None:
    """Stage 1: the vision tower (in place), through throw-away per-attribute heads."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    hidden = vlm.config.vision_config.hidden_size
    heads = nn.ModuleDict(
        {name: nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, len(c))) for name, c in ATTRIBUTES.items()}
    )
    tower = vlm.model.vision_tower.train()
    params = [*tower.parameters(), *heads.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=0.05)
    start, running = time.perf_counter(), None
    for step in range(steps):
        idx = torch.randint(len(data.pixels), (batch_size,), generator=gen)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            feats = patch_features(vlm, data.pixels[idx])
            logits = {name: head(feats).float() for name, head in heads.items()}
        target = data.targets[idx]
        loss = sum(
            nn.functional.cross_entropy(logits[name].flatten(0, 1), target[..., a].flatten(), ignore_index=IGNORE)
            for a, name in enumerate(ATTRIBUTES)
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            with torch.no_grad():
                acc = {
                    name: ((logits[name].argmax(-1) == target[..., a]) | (target[..., a] == IGNORE))
                    .float()
                    .mean()
                    .item()
                    for a, name in enumerate(ATTRIBUTES)
                }
            accs = " ".join(f"{k} {v:.3f}" for k, v in acc.items())
            print(
                f"vision {step + 1}/{steps} loss {running:.4f} {time.perf_counter() - start:.0f}s  {accs}", flush=True
            )
    tower.eval().requires_grad_(False)


@torch.no_grad()
def all_features(vlm: Any, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Frozen vision features of every training image, in float32 as inference computes them."""
    return torch.cat([patch_features(vlm, pixels[s : s + batch_size]) for s in range(0, len(pixels), batch_size)])


def collate(data: Encoded, idx: torch.Tensor, pad_id: int) -> tuple[dict[str, torch.Tensor], torch.Tensor, int]:
    """Left-padded token batch; labels (B, L) for the last L = longest answer positions."""
    seqs = [data.ids[i] for i in idx.tolist()]
    width, longest = max(len(s) for s in seqs), max(data.answer_len[i] for i in idx.tolist())
    ids = torch.full((len(seqs), width), pad_id)
    mask = torch.zeros_like(ids)
    labels = torch.full((len(seqs), longest), IGNORE)
    for row, (s, i) in enumerate(zip(seqs, idx.tolist(), strict=True)):
        ids[row, width - len(s) :], mask[row, width - len(s) :] = s, 1
        n = data.answer_len[i]
        labels[row, longest - n :] = s[-n:]
    return {"input_ids": ids, "attention_mask": mask}, labels, longest


def answer_logits(vlm: Any, lm: Any, feats: torch.Tensor, batch: dict[str, torch.Tensor], keep: int) -> torch.Tensor:
    """LLaVA's forward from precomputed vision features: project, scatter into the embeddings, decode;
    returns the logits that predict the last ``keep`` tokens."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    embeds = lm.get_input_embeddings()(ids)
    image = vlm.model.multi_modal_projector(feats).to(embeds.dtype)
    embeds = embeds.masked_scatter((ids == vlm.config.image_token_id)[..., None], image)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    hidden = lm(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids).last_hidden_state
    return vlm.lm_head(hidden[:, -keep - 1 : -1])


def train_language(
    vlm: Any,
    feats: torch.Tensor,
    data: Encoded,
    check: tuple[torch.Tensor, Encoded],
    args: argparse.Namespace,
    pad_id: int,
) -> Any:
    """Stage 2: projector + LoRA on the frozen language model; returns the peft-wrapped language model."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(args.seed + 1)
    gen = torch.Generator().manual_seed(args.seed + 1)
    vlm.requires_grad_(False)
    lm = get_peft_model(vlm.model.language_model, LoraConfig(lora_dropout=0.0, **LORA))
    projector = vlm.model.multi_modal_projector.requires_grad_(True)
    groups = [
        {"params": list(projector.parameters()), "peak": args.lr},
        {"params": [p for p in lm.parameters() if p.requires_grad], "peak": args.lora_lr},
    ]
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.98), weight_decay=0.0)
    start, running = time.perf_counter(), None
    order, cursor = torch.randperm(len(data.ids), generator=gen), 0
    for step in range(args.steps):
        if cursor + args.batch_size > len(order):
            order, cursor = torch.randperm(len(data.ids), generator=gen), 0
        idx = order[cursor : cursor + args.batch_size]
        cursor += args.batch_size
        batch, labels, keep = collate(data, idx, pad_id)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, g["peak"])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = answer_logits(vlm, lm, feats[data.scene[idx]], batch, keep).float()
        loss = nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            msg = f"language {step + 1}/{args.steps} loss {running:.4f} {time.perf_counter() - start:.0f}s"
            if args.check_every and ((step + 1) % args.check_every == 0 or step + 1 == args.steps):
                msg += "  check " + " ".join(
                    f"{k} {v:.3f}" for k, v in teacher_forced_accuracy(vlm, lm, *check, pad_id).items()
                )
            print(msg, flush=True)
    return lm


@torch.no_grad()
def teacher_forced_accuracy(
    vlm: Any, lm: Any, feats: torch.Tensor, data: Encoded, pad_id: int, batch_size: int = 64
) -> dict[str, float]:
    """Teacher-forced progress check on held-out questions: is every answer token the argmax? By type."""
    hits = []
    for s in range(0, len(data.ids), batch_size):
        idx = torch.arange(s, min(s + batch_size, len(data.ids)))
        batch, labels, keep = collate(data, idx, pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pred = answer_logits(vlm, lm, feats[data.scene[idx]], batch, keep).argmax(-1)
        hits += ((pred == labels) | (labels == IGNORE)).all(-1).tolist()
    out = {"all": sum(hits) / len(hits)}
    for kind in dict.fromkeys(data.kinds):
        sel = [h for h, k in zip(hits, data.kinds, strict=True) if k == kind]
        out[kind] = sum(sel) / len(sel)
    return out


def trained_state(vlm: Any, lm: Any | None) -> dict[str, torch.Tensor]:
    """Only what training changed: vision tower, projector and (if trained) the LoRA weights."""
    from peft import get_peft_model_state_dict

    state = {
        k: v.detach().clone().contiguous()
        for k, v in vlm.state_dict().items()
        if k.startswith((VISION_PREFIX, PROJECTOR_PREFIX))
    }
    if lm is not None:
        state |= {LORA_PREFIX + k: v.detach().clone().contiguous() for k, v in get_peft_model_state_dict(lm).items()}
    return state


def shipped(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The package ships float16 (half the size; the card's accuracy is measured on these very weights).
    The stage-1 file stays float32, so resuming from it is exact."""
    return {k: v.to(torch.float16) for k, v in state.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastv.testbed.train", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--scenes", type=int, default=SPLITS["train"])
    p.add_argument("--vision-steps", type=int, default=1200)
    p.add_argument("--vision-batch-size", type=int, default=64)
    p.add_argument("--vision-lr", type=float, default=1e-3)
    p.add_argument("--vision-from", type=Path, default=None, help="skip stage 1: load its saved output")
    p.add_argument("--steps", type=int, default=480)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3, help="projector peak learning rate")
    p.add_argument("--lora-lr", type=float, default=5e-4)
    p.add_argument("--check-n", type=int, default=40, help="test scenes (x6 questions) for the progress check")
    p.add_argument("--check-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=25)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    language_model, tokenizer = load_language_model()
    processor = build_processor(tokenizer)
    torch.manual_seed(args.seed)
    vlm = build_vlm(language_model, tokenizer)
    del language_model
    data = encode("train", args.scenes, processor, args.seed)
    check = encode("test", args.check_n, processor, args.seed)
    print(f"ready in {time.perf_counter() - t0:.0f}s: {len(data.pixels)} scenes, {len(data.ids)} questions", flush=True)
    t1 = time.perf_counter()
    if args.vision_from is None:
        train_vision(vlm, data, args.vision_steps, args.vision_batch_size, args.vision_lr, args.seed, args.log_every)
        save_file(trained_state(vlm, None), args.out / "vision.safetensors")
    else:
        vlm.load_state_dict(load_file(args.vision_from), strict=False)
        vlm.model.vision_tower.eval().requires_grad_(False)
    t2 = time.perf_counter()
    feats = all_features(vlm, data.pixels)
    check_feats = all_features(vlm, check.pixels)
    pad_id = tokenizer.pad_token_id
    lm = train_language(vlm, feats, data, (check_feats, check), args, pad_id)
    t3 = time.perf_counter()
    save_file(shipped(trained_state(vlm, lm)), args.out / "trained.safetensors")
    run = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "lora": LORA,
        "stage1_seconds": t2 - t1,
        "stage2_seconds": t3 - t2,
        "wall_seconds": time.perf_counter() - t0,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "train_scenes": len(data.pixels),
        "train_questions": len(data.ids),
        "check": teacher_forced_accuracy(vlm, lm, check_feats, check, pad_id),
    }
    (args.out / "training_run.json").write_text(json.dumps(run, indent=2) + "\n")
    print(json.dumps(run, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
