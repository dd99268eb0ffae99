"""Model card for the built-in model, written by the training run so its numbers cannot drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastv.builtin.model import ModelSize
from fastv.builtin.text import PROMPT_TEMPLATE


def _command(args: dict[str, str]) -> str:
    flags = [f"--out {args['out']}", f"--steps {args['steps']}", f"--seed {args['seed']}"]
    if args.get("preset", "default") != "default":
        flags.append(f"--preset {args['preset']}")
    if args.get("train_n", "None") != "None":
        flags.append(f"--train-n {args['train_n']}")
    if args.get("threads", "0") != "0":
        flags.append(f"--threads {args['threads']}")
    return "python -m fastv.builtin.train " + " ".join(flags)


def card_text(size: ModelSize, meta: dict[str, Any]) -> str:
    """Markdown model card: architecture, data, how it was trained, what it scores."""
    test = meta.get("test") or {}
    acc = f"{100 * test['accuracy']:.2f}% ({test['correct']} / {test['n']})" if test else "not measured"
    minutes = meta["train_seconds"] / 60
    return f"""---
license: mit
library_name: transformers
pipeline_tag: image-text-to-text
tags: [llava, easy-vqa, fastv, tiny]
---

# easyvqa-llava: the built-in model of `fastv`

A small but architecturally genuine LLaVA (`LlavaForConditionalGeneration`: CLIP ViT vision tower,
2-layer GELU MLP projector, Llama decoder) trained from scratch on the CPU on easy-VQA. It exists
so that FastV can be tested and demonstrated on a trained VLM, offline, in seconds. It knows
nothing but coloured shapes.

## Architecture

| part | configuration |
|---|---|
| vision tower | CLIP ViT, {size.vision_layers} layers, hidden {size.vision_hidden}, {size.vision_heads} heads, \
image {size.image_size}x{size.image_size}, patch {size.patch_size} |
| image tokens | {size.n_image_tokens} per image (`vision_feature_select_strategy="default"` drops CLS; \
`vision_feature_layer=-1`) |
| projector | Linear-GELU-Linear, {size.vision_hidden} -> {size.text_hidden} |
| decoder | Llama, {size.text_layers} layers, hidden {size.text_hidden}, {size.text_heads} heads, \
SwiGLU FFN {size.text_ffn}, RoPE |
| tokenizer | word-level over the easy-VQA vocabulary (lower-cased), specials `<pad> <s> </s> <unk> <image>` |
| parameters | {meta["n_params"] / 1e6:.2f} M, stored as float32 safetensors |

Prompt format (one image, greedy decoding, left padding for batches):

```
{PROMPT_TEMPLATE}
```

The processor's chat template renders this format too. The answer is one word followed by `</s>`,
e.g. `Question: what color is the shape? <image> Answer:` -> `blue`. Answers: circle, rectangle, triangle, yes, no, and the colours red, green, blue, black, gray,
teal, brown, yellow.

## Data

easy-VQA 1.0 (`pip install easy-vqa==1.0`, MIT license, Victor Zhou): 64x64 images of one coloured
shape. Training used the train split only ({meta["train_questions"]} questions over
{meta["train_images"]} images), with random horizontal flips. The test split (9,673 questions over
1,000 images) was never used for training or model selection.

## Training

```
{_command(meta["args"])}
```

Two stages, both on the train split only, seed {meta["args"]["seed"]}:

1. Vision tower ({meta["args"]["vision_steps"]} steps): each patch token of the projected layer is trained
   (through throw-away linear heads) to name what it shows: background, or the image's shape and colour
   where a pixel test finds the shape. The labels are read off the training questions ("what shape ...?
   circle", "is there a red shape? yes"). Per-patch targets keep the evidence local, where the shape is,
   which is what makes this model a meaningful test bed for token pruning.
2. LLaVA ({meta["args"]["steps"]} steps), vision tower frozen: projector and decoder trained on the
   VQA answers, loss on the answer word and `</s>` only, batch {meta["args"]["batch_size"]}.

AdamW (lr {meta["args"]["lr"]}, betas 0.9/0.98, weight decay {meta["args"]["weight_decay"]}), 5% warm-up then
cosine decay, random horizontal flips. Training took {minutes:.1f} min ({meta["wall_seconds"] / 60:.1f} min in
all, with data encoding and the test-split evaluation) on {meta["threads"]} CPU thread(s), torch
{meta.get("torch", "?")}; same seed and thread count give the same weights bit for bit.

The question comes before the image: a causal decoder then lets image tokens attend to the question,
and this tiny model learns yes/no questions ("is there a red shape?") within a CPU budget; with the
image first it stayed on the question prior (84% on yes/no) in our runs.

## Evaluation

Test-split accuracy, greedy `model.generate()` with batched left padding, exact match after
normalising: **{acc}**.

FastV results on this model: see `docs/quality.md` in the fastv repository (`fastv eval`).

## Loading

```python
from fastv.builtin import load_builtin
model, processor = load_builtin()  # or LlavaForConditionalGeneration / AutoProcessor.from_pretrained(dir)
```
"""


def write_card(out: Path, size: ModelSize, meta: dict[str, Any]) -> None:
    (out / "README.md").write_text(card_text(size, meta))
