"""``labels=`` on a pruned model: the causal-LM loss over the positions the pruned layers ran on."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fastv.core import KeepPlan, gather_sequence
from fastv.errors import FastVError


def kept_loss(model: nn.Module, logits: torch.Tensor, labels: torch.Tensor, plan: KeepPlan | None) -> torch.Tensor:
    """The causal-LM loss over the positions the pruned layers ran on.

    A kept position predicts the token after it in the *original* prompt (not the next kept one), so
    labels are shifted on the full sequence first, then gathered at the kept positions. Without a plan
    (nothing dropped) this is the model's own loss, bit for bit.
    """
    labels = labels.to(logits.device)
    if plan is None:
        if logits.shape[1] != labels.shape[1]:
            raise FastVError(f"labels {tuple(labels.shape)} do not match the logits ({logits.shape[1]} positions).")
        return model.loss_function(logits=logits, labels=labels, vocab_size=logits.shape[-1])
    if logits.shape[1] != plan.length:
        raise FastVError(
            "With labels, FastV needs logits at every kept position: do not pass logits_to_keep together with labels."
        )
    shifted = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=-100)
    kept = gather_sequence(shifted, plan.indices, seq_dim=1)
    kept = kept.masked_fill(~plan.valid.to(kept.device), -100)
    return model.loss_function(logits=logits, labels=None, vocab_size=logits.shape[-1], shift_labels=kept)


def with_loss(output: Any, loss: torch.Tensor) -> Any:
    """The model output with ``loss`` set, as transformers returns it (first in a tuple)."""
    if isinstance(output, tuple):
        return (loss, *output)
    output["loss"] = loss
    return output
