"""Train the Sort-of-CLEVR testbed on the CPU: ``python -m fastv.testbed.train --out DIR``.

Stage 1 trains the vision tower and the projector together: every image token should become the
input embedding of the word its patch carries (see :mod:`fastv.testbed.targets`).
Stage 2 freezes them and trains LoRA adapters on SmolLM2's upper half to answer, with the loss on
the answer tokens and ``<|im_end|>`` only. Two things make it affordable on 2 cores: all 36
questions of a scene ride in one multi-turn conversation (one image encoding per 36 answers), and
the frozen lower half runs once per conversation before training (its output cached once).
Both stages run under bfloat16 autocast (``--precision float32`` turns it off: CPUs without native
bfloat16, AVX-512 BF16 or AMX, run its backward pass tens of times slower).
Deterministic for a seed and thread count; each stage seeds itself, so running stage 2 from a
saved stage-1 file (``--vision-from``) gives the same weights as one run.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fastv.builtin.pretrain import lr_at as warmup_cosine
from fastv.compat import stacked_image_features
from fastv.sortofclevr.files import scenes
from fastv.sortofclevr.questions import QUESTION_TYPES, ask
from fastv.sortofclevr.scene import COLORS, render
from fastv.testbed.model import (
    END_OF_TURN,
    IMAGE_TOKEN,
    LORA,
    LORA_PREFIX,
    N_IMAGE_TOKENS,
    PATCH_SIZE,
    adapted_layers,
    build_processor,
    build_vlm,
    lora_config,
    prompt,
)
from fastv.testbed.smollm2 import load_language_model
from fastv.testbed.targets import FACT_OF_WORD, FACT_WORDS, WORDS, scenes_words

VISION_PREFIX = "model.vision_tower."
PROJECTOR_PREFIX = "model.multi_modal_projector."
IGNORE = -100
NEXT_TURN = "\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"  # CHAT_TEMPLATE's later turns


def lr_at(step: int, steps: int, peak: float) -> float:
    """5% linear warm-up, then cosine decay to 5% of the peak (the built-in model's schedule)."""
    return warmup_cosine(step, steps, peak, warmup=max(1, steps // 20))


def render_split(split: str, n_scenes: int, processor: Any, seed: int) -> tuple[torch.Tensor, list]:
    """``(pixels, scenes)``: the split's first scenes through the processor's own image code."""
    drawn = [(scene, questions) for _, scene, questions in scenes(split, n_scenes, seed)]
    images = [render(scene) for scene, _ in drawn]
    pixels = torch.cat(
        [
            processor.image_processor(images=images[s : s + 512], return_tensors="pt")["pixel_values"]
            for s in range(0, len(images), 512)
        ]
    )
    return pixels, drawn


def word_table(vlm: Any, tokenizer: Any) -> torch.Tensor:
    """``(len(WORDS), hidden)``: the language model's input embedding of every word an image token can carry."""
    ids = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in WORDS]
    if any(len(i) != 1 for i in ids):
        raise ValueError(f"every testbed word must be one token; got {dict(zip(WORDS, ids, strict=True))}")
    return vlm.get_input_embeddings().weight[[i[0] for i in ids]].detach().float()


def image_embeddings(vlm: Any, pixels: torch.Tensor) -> torch.Tensor:
    """``(images, N_IMAGE_TOKENS, hidden)``: what the language model receives at the image positions
    (LLaVA's own feature selection and projector)."""
    return stacked_image_features(vlm.model.get_image_features(pixel_values=pixels).pooler_output)


RELATIONAL_WEIGHT = 3.0  # closest / furthest tokens: the slowest facts for the tower to learn


def place_coordinates(tower: Any) -> None:
    """Start three channels of the patch position embeddings at x, y and x^2 + y^2.

    Closest / furthest need distances between objects; with these channels one attention head can
    score -|p - q|^2 = 2 p.q - |p|^2 - |q|^2 between patches from the start (a stock CLIP ViT otherwise
    learns positions from noise, and learned them too slowly here)."""
    table = tower.embeddings.position_embedding.weight
    side = round((table.shape[0] - 1) ** 0.5)
    row, col = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    x, y = ((c.flatten().float() - (side - 1) / 2) / ((side - 1) / 2) for c in (col, row))
    with torch.no_grad():
        table[1:, 0], table[1:, 1], table[1:, 2] = x, y, x * x + y * y - 2 / 3  # CLS (row 0) untouched


def autocast(precision: str) -> torch.autocast:
    """The training precision: bfloat16 autocast (the shipped recipe), or plain float32."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16")


def train_vision(vlm: Any, pixels: torch.Tensor, words: torch.Tensor, table: torch.Tensor, args: Any) -> None:
    """Stage 1: vision tower + projector (in place), regressed onto the target words' embeddings.

    Mean squared error puts each token on its word; the cross-entropy over the words (cosine logits)
    keeps near-identical embeddings (" square" / " squares") apart."""
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    place_coordinates(vlm.model.vision_tower)
    weight_of_word = torch.tensor([RELATIONAL_WEIGHT if f in ("closest", "furthest") else 1.0 for f in FACT_OF_WORD])
    trained = nn.ModuleList([vlm.model.vision_tower, vlm.model.multi_modal_projector]).train().requires_grad_(True)
    opt = torch.optim.AdamW(trained.parameters(), lr=args.vision_lr, betas=(0.9, 0.98), weight_decay=0.05)
    scale = table.pow(2).sum(-1).mean()
    unit = nn.functional.normalize(table, dim=-1)
    start, running = time.perf_counter(), None
    for step in range(args.vision_steps):
        idx = torch.randint(len(pixels), (args.vision_batch_size,), generator=gen)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.vision_steps, args.vision_lr)
        with autocast(args.precision):
            out = image_embeddings(vlm, pixels[idx]).float()
        target = words[idx]
        weight = weight_of_word[target]
        mse = ((out - table[target]).pow(2).sum(-1) * weight).mean() / scale
        logits = 30.0 * nn.functional.normalize(out, dim=-1) @ unit.T
        ce = nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
        loss = mse + (ce * weight.flatten()).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if (step + 1) % args.log_every == 0 or step + 1 == args.vision_steps:
            print(
                f"vision {step + 1}/{args.vision_steps} loss {running:.4f} {time.perf_counter() - start:.0f}s  "
                + word_accuracy_text(out.detach(), target, table),
                flush=True,
            )
    trained.eval().requires_grad_(False)


def nearest_words(embeds: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    return torch.cdist(embeds.flatten(0, -2), table).argmin(-1).view(embeds.shape[:-1])


def word_accuracy(embeds: torch.Tensor, target: torch.Tensor, table: torch.Tensor) -> dict[str, float]:
    """How often an image token is nearest to its own word, per fact (and on background)."""
    hit = nearest_words(embeds, table) == target
    fact = [FACT_OF_WORD[w] for w in target.flatten().tolist()]
    out = {}
    for name in (*FACT_WORDS, "background"):
        sel = torch.tensor([f == name for f in fact]).view_as(hit)
        out[name] = round(hit[sel].float().mean().item(), 4)
    return out


def word_accuracy_text(embeds: torch.Tensor, target: torch.Tensor, table: torch.Tensor) -> str:
    return "words: " + " ".join(f"{k} {v:.3f}" for k, v in word_accuracy(embeds, target, table).items())


@dataclass
class Conversation:
    ids: torch.Tensor  # (L,) every question of one scene, the image expanded to N_IMAGE_TOKENS tokens
    labels: torch.Tensor  # (L,) the token each position predicts; IGNORE outside the answers


def tokenised_turn(tokenizer: Any, text: str, answer: str) -> tuple[list[int], list[int]]:
    """``(query_ids, answer_ids)`` of one chat turn: the image placeholder expanded to its
    ``N_IMAGE_TOKENS`` tokens, the answer closed by ``<|im_end|>`` (what the model must predict)."""
    query = tokenizer(text.replace(IMAGE_TOKEN, IMAGE_TOKEN * N_IMAGE_TOKENS), add_special_tokens=False)
    return query["input_ids"], tokenizer(answer + END_OF_TURN, add_special_tokens=False)["input_ids"]


def conversation(scene: Any, tokenizer: Any, rng: random.Random) -> Conversation:
    """All 36 questions of a scene (every type about every colour), in a seeded order, as one chat.

    The first turn is exactly the single-question prompt used at inference."""
    questions = [ask(scene, t.name, c) for t in QUESTION_TYPES for c in COLORS]
    rng.shuffle(questions)
    ids: list[int] = []
    labels: list[int] = []
    for n, q in enumerate(questions):
        query, answer = tokenised_turn(
            tokenizer, prompt(q.text) if n == 0 else NEXT_TURN.format(question=q.text), q.answer
        )
        ids += query + answer
        labels += [IGNORE] * (len(query) - 1) + answer + [IGNORE]
    return Conversation(torch.tensor(ids), torch.tensor(labels))


def embed(vlm: Any, ids: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """LLaVA's input embeddings: token embeddings with the image embeddings scattered in."""
    embeds = vlm.get_input_embeddings()(ids)
    at_image = vlm.model.get_placeholder_mask(ids, inputs_embeds=embeds, image_features=image)
    return embeds.masked_scatter(at_image, image.to(embeds.dtype))


def run_layers(lm: Any, hidden: torch.Tensor, layers: Any) -> torch.Tensor:
    """Some decoder layers on right-padded, causal sequences (SDPA's causal path: no mask needed)."""
    positions = torch.arange(hidden.shape[1])[None].expand(hidden.shape[0], -1)
    rope = lm.rotary_emb(hidden, position_ids=positions)
    for layer in layers:
        hidden = layer(hidden, attention_mask=None, position_ids=positions, position_embeddings=rope)
    return hidden


@torch.no_grad()
def lower_half(vlm: Any, chats: list[Conversation], images: torch.Tensor, precision: str) -> list[torch.Tensor]:
    """Each conversation's hidden states entering the first adapted layer, in the training precision
    (frozen, so once)."""
    lm = vlm.model.language_model
    first = adapted_layers(lm.config.num_hidden_layers)[0]
    out = []
    for chat, image in zip(chats, images, strict=True):
        with autocast(precision):
            hidden = run_layers(lm, embed(vlm, chat.ids[None], image[None]), lm.layers[:first])
        out.append(hidden[0].to(torch.bfloat16 if precision == "bfloat16" else torch.float32))
    return out


def upper_half_loss(
    vlm: Any, peft_lm: Any, hidden: list[torch.Tensor], labels: list[torch.Tensor], precision: str
) -> torch.Tensor:
    """Cross-entropy on the answers, running only the adapted layers on the cached lower half."""
    lm = peft_lm.base_model.model
    width = max(len(h) for h in hidden)
    batch = torch.stack([nn.functional.pad(h, (0, 0, 0, width - len(h))) for h in hidden])
    target = torch.stack([nn.functional.pad(t, (0, width - len(t)), value=IGNORE) for t in labels])
    first = adapted_layers(lm.config.num_hidden_layers)[0]
    with autocast(precision):
        out = lm.norm(run_layers(lm, batch, lm.layers[first:]))
        where = target != IGNORE
        logits = vlm.lm_head(out[where]).float()
    return nn.functional.cross_entropy(logits, target[where])


def train_language(vlm: Any, hidden: list[torch.Tensor], chats: list[Conversation], check: Any, args: Any) -> Any:
    """Stage 2: LoRA on the frozen language model's upper half; returns the peft-wrapped language model."""
    from peft import get_peft_model

    torch.manual_seed(args.seed + 1)
    gen = torch.Generator().manual_seed(args.seed + 1)
    vlm.requires_grad_(False)
    lm = get_peft_model(vlm.model.language_model, lora_config(vlm.config.text_config.num_hidden_layers))
    params = [p for p in lm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lora_lr, betas=(0.9, 0.98), weight_decay=0.0)
    start, running = time.perf_counter(), None
    order, cursor = torch.randperm(len(chats), generator=gen), 0
    for step in range(args.steps):
        if cursor + args.batch_size > len(order):
            order, cursor = torch.randperm(len(chats), generator=gen), 0
        idx = order[cursor : cursor + args.batch_size].tolist()
        cursor += args.batch_size
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lora_lr)
        loss = upper_half_loss(vlm, lm, [hidden[i] for i in idx], [chats[i].labels for i in idx], args.precision)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            msg = f"language {step + 1}/{args.steps} loss {running:.4f} {time.perf_counter() - start:.0f}s"
            if args.check_every and ((step + 1) % args.check_every == 0 or step + 1 == args.steps):
                msg += "  check " + " ".join(
                    f"{k} {v:.3f}" for k, v in teacher_forced_accuracy(vlm, lm, *check, args.precision).items()
                )
            print(msg, flush=True)
    return lm


@torch.no_grad()
def teacher_forced_accuracy(
    vlm: Any, lm: Any, images: torch.Tensor, drawn: list, tokenizer: Any, precision: str
) -> dict[str, float]:
    """Progress check on held-out single-question prompts (the inference format): is every answer
    token the argmax? Overall and by question type."""
    hits: dict[str, list[bool]] = {}
    for image, (_, questions) in zip(images, drawn, strict=True):
        for q in questions:
            query, answer = tokenised_turn(tokenizer, prompt(q.text), q.answer)
            ids = torch.tensor(query + answer)[None]
            with autocast(precision):
                hidden = lm(inputs_embeds=embed(vlm, ids, image[None])).last_hidden_state
                pred = vlm.lm_head(hidden[0, -len(answer) - 1 : -1]).argmax(-1)
            hits.setdefault(q.kind, []).append(pred.tolist() == answer)
    every = [h for kind in hits.values() for h in kind]
    return {"all": sum(every) / len(every)} | {kind: sum(h) / len(h) for kind, h in hits.items()}


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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fastv.testbed.train", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--precision",
        choices=("bfloat16", "float32"),
        default="bfloat16",
        help="bfloat16 autocast (the shipped run) or float32 (faster on CPUs without native bfloat16)",
    )
    p.add_argument("--vision-scenes", type=int, default=8000, help="training scenes for stage 1")
    p.add_argument("--vision-steps", type=int, default=2500)
    p.add_argument("--vision-batch-size", type=int, default=32)
    p.add_argument("--vision-lr", type=float, default=1e-3)
    p.add_argument("--vision-from", type=Path, default=None, help="skip stage 1: load its saved output")
    p.add_argument("--scenes", type=int, default=400, help="training scenes for stage 2 (36 questions each)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=4, help="scenes (conversations) per stage-2 step")
    p.add_argument("--lora-lr", type=float, default=2e-3)
    p.add_argument("--check-n", type=int, default=40, help="test scenes (x6 questions) for the progress check")
    p.add_argument("--check-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=50)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    language_model, tokenizer = load_language_model()
    processor = build_processor(tokenizer)
    torch.manual_seed(args.seed)
    vlm = build_vlm(language_model, tokenizer)
    del language_model
    table = word_table(vlm, tokenizer)
    t1 = time.perf_counter()
    if args.vision_from is None:
        pixels, drawn = render_split("train", args.vision_scenes, processor, args.seed)
        words = torch.from_numpy(scenes_words([scene for scene, _ in drawn], PATCH_SIZE))
        print(f"stage 1: {len(pixels)} scenes rendered in {time.perf_counter() - t1:.0f}s", flush=True)
        train_vision(vlm, pixels, words, table, args)
        save_file(trained_state(vlm, None), args.out / "vision.safetensors")
    else:
        vlm.load_state_dict(load_file(args.vision_from), strict=False)
        vlm.model.vision_tower.eval().requires_grad_(False)
        vlm.model.multi_modal_projector.eval().requires_grad_(False)
    t2 = time.perf_counter()
    with torch.no_grad():
        pixels, drawn = render_split("train", args.scenes, processor, args.seed)
        images = image_embeddings(vlm, pixels)
        check_pixels, check_drawn = render_split("test", args.check_n, processor, args.seed)
        check = (image_embeddings(vlm, check_pixels), check_drawn, tokenizer)
        test_words = torch.from_numpy(scenes_words([scene for scene, _ in check_drawn], PATCH_SIZE))
        vision_check = word_accuracy(check[0], test_words, table)
    rng = random.Random(f"testbed-conversations/{args.seed}")
    chats = [conversation(scene, tokenizer, rng) for scene, _ in drawn]
    hidden = lower_half(vlm, chats, images, args.precision)
    print(f"stage 2: vision check {vision_check}", flush=True)
    print(f"stage 2: {len(chats)} conversations, lower half cached in {time.perf_counter() - t2:.0f}s", flush=True)
    lm = train_language(vlm, hidden, chats, check, args)
    t3 = time.perf_counter()
    save_file(shipped(trained_state(vlm, lm)), args.out / "trained.safetensors")
    run = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "lora": {**LORA, "layers": adapted_layers(vlm.config.text_config.num_hidden_layers)},
        "stage1_seconds": t2 - t1,
        "stage2_seconds": t3 - t2,
        "wall_seconds": time.perf_counter() - t0,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "train_scenes": len(chats),
        "train_questions": len(chats) * len(QUESTION_TYPES) * len(COLORS),
        "vision_check": vision_check,
        "check": teacher_forced_accuracy(vlm, lm, *check, args.precision),
    }
    (args.out / "training_run.json").write_text(json.dumps(run, indent=2) + "\n")
    print(json.dumps(run, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
