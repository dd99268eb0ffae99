"""Stage 1: pre-train the vision tower on shape / colour labels read off the training questions.

Why: trained end to end from scratch, the tiny LLaVA learns colours quickly but not shapes (the
answer-only loss reaches the ViT through a randomly initialised decoder) and stays on the question
prior within a CPU budget. Real LLaVAs start from a pre-trained CLIP; this is the small version.

Each patch token (of the layer LLaVA projects) is trained to say what it shows: background, or the
image's shape and colour where the shape is (a pixel test finds those patches). Image-level pooling
would let every token carry the whole answer (6 random tokens of 64 then still score 89%), which
makes a useless test bed for token pruning; per-patch targets keep the evidence where the shape is.
The heads are thrown away; the saved model is a stock ``LlavaForConditionalGeneration``.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from fastv.builtin.labels import COLORS, IGNORE, SHAPES


class PatchHeads(nn.Module):
    """Per patch token: which shape and which colour it shows, with an extra "background" class."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.shape = nn.Linear(hidden, len(SHAPES) + 1)
        self.color = nn.Linear(hidden, len(COLORS) + 1)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.norm(tokens)
        return self.shape(x), self.color(x)


def foreground_patches(pixels: torch.Tensor, patch: int, threshold: float = 0.5) -> torch.Tensor:
    """(n, n_patches) bool: patches where at least 1/16 of the pixels differ from the background.

    The background is one flat colour per image, read as the median of the border pixels.
    """
    border = torch.cat([pixels[..., 0, :], pixels[..., -1, :], pixels[..., :, 0], pixels[..., :, -1]], dim=-1)
    background = border.median(dim=-1).values[..., None, None]  # (n, 3, 1, 1)
    differs = ((pixels - background).abs().amax(1) > threshold).float()  # (n, H, W)
    share = nn.functional.avg_pool2d(differs[:, None], patch).flatten(1)  # (n, n_patches), row-major
    return share >= 1 / 16


def patch_targets(pixels: torch.Tensor, labels: torch.Tensor, patch: int) -> torch.Tensor:
    """(n, n_patches, 2) targets: the image's (shape, colour) on foreground patches, background elsewhere."""
    fg = foreground_patches(pixels, patch)
    bg = torch.tensor([len(SHAPES), len(COLORS)])
    out = torch.where(fg[..., None], labels[:, None, :].expand(-1, fg.shape[1], -1), bg)
    return torch.where((labels[:, None, :] == IGNORE) & fg[..., None], IGNORE, out)


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to 5% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def patch_features(model, pixels: torch.Tensor) -> torch.Tensor:
    """The vision features LLaVA projects: hidden state ``vision_feature_layer``, CLS dropped."""
    out = model.model.vision_tower(pixel_values=pixels, output_hidden_states=True)
    hidden = out.hidden_states[model.config.vision_feature_layer]
    return hidden[:, 1:] if model.config.vision_feature_select_strategy == "default" else hidden


def pretrain_vision(
    model,
    pixels: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    log_every: int = 50,
) -> None:
    """Train ``model``'s vision tower (in place): every patch token must name what it shows."""
    heads = PatchHeads(model.config.vision_config.hidden_size)
    params = list(model.model.vision_tower.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=0.05)
    ce = nn.CrossEntropyLoss(ignore_index=IGNORE)
    start, warmup = time.perf_counter(), max(1, steps // 20)
    patch = model.config.vision_config.patch_size
    for step in range(steps):
        idx = torch.randint(len(pixels), (batch_size,), generator=generator)
        flip = torch.rand(batch_size, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], pixels[idx].flip(-1), pixels[idx])
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        shape_logits, color_logits = heads(patch_features(model, x))
        target = patch_targets(x, labels[idx], patch)
        loss = ce(shape_logits.flatten(0, -2), target[..., 0].flatten()) + ce(
            color_logits.flatten(0, -2), target[..., 1].flatten()
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if (step + 1) % log_every == 0 or step + 1 == steps:
            print(f"vision step {step + 1}/{steps}  loss {loss.item():.4f}  {time.perf_counter() - start:.0f}s")
