"""The paper's "inefficient visual attention" study (FastV, Section 3): where attention goes, per layer.

Token classes, from one prompt plus its generated answer:
  - ``system``: prompt text before the first image / video token (BOS, system prompt, chat header);
  - ``image``: image and video placeholder tokens (the tokens FastV may prune);
  - ``instruction``: every other prompt token (the user's text after / between images);
  - ``output``: the tokens the model generated (greedy, ``max_new_tokens``).

Queries (``queries=``): ``"output"`` (default, the paper's reading) takes each generated token as a query
over the full sequence prompt + output, causally (it sees the prompt, earlier outputs and itself);
``"last"`` takes only the last prompt token (the row FastV's original code ranks with); ``"all"`` takes
every token of prompt + output.

Per layer and class: **allocation** = attention the class's tokens receive, summed over those tokens,
averaged over heads and over the query set (so the four classes sum to 1 per layer: the total
attention received divided by the number of queries); **efficiency** = allocation / the class's token
count in the full sequence (attention per token). The paper's finding: after layer 2, image tokens
get a small allocation despite being most of the sequence, hence a tiny efficiency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fastv.analysis.attention import BLOCK_BYTES, AttentionProbe
from fastv.errors import FastVError
from fastv.families import family_for

CLASSES: tuple[str, ...] = ("system", "image", "instruction", "output")
QUERY_SETS: tuple[str, ...] = ("output", "last", "all")


def token_classes(prunable: torch.Tensor, prompt_length: int) -> torch.Tensor:
    """(n,) class index (see ``CLASSES``) per position of prompt + output, from the prunable-token mask."""
    prunable = prunable.reshape(-1).bool()
    if not bool(prunable[:prompt_length].any()):
        raise FastVError("The prompt has no image / video tokens: the attention study needs at least one image.")
    classes = torch.full(prunable.shape, CLASSES.index("instruction"), dtype=torch.long)
    first = int(prunable.nonzero()[0])
    classes[:first] = CLASSES.index("system")
    classes[prunable] = CLASSES.index("image")
    classes[prompt_length:] = CLASSES.index("output")
    return classes


@dataclass
class SampleAnalysis:
    """Every number of one sample's study; ``allocation`` / ``efficiency`` are (layers, classes)."""

    prompt_length: int
    output_ids: list[int]
    classes: torch.Tensor  # (n,) class per position
    query_positions: torch.Tensor  # (q,)
    shares: torch.Tensor  # (layers, q, classes); NaN on a hybrid decoder's recurrent layers (no attention)
    maps: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> (bins, bins) pooled map
    output_text: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> torch.Tensor:
        return torch.bincount(self.classes, minlength=len(CLASSES)).double()

    @property
    def allocation(self) -> torch.Tensor:
        return self.shares.mean(dim=1)

    @property
    def efficiency(self) -> torch.Tensor:
        counts = self.counts
        return self.allocation / torch.where(counts > 0, counts, torch.nan)

    def class_bounds(self) -> list[tuple[str, int, int]]:
        """Contiguous runs (class, start, stop) along the sequence, for drawing boundaries on maps."""
        runs, classes = [], self.classes.tolist()
        start = 0
        for i in range(1, len(classes) + 1):
            if i == len(classes) or classes[i] != classes[start]:
                runs.append((CLASSES[classes[start]], start, i))
                start = i
        return runs

    def to_dict(self, with_shares: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.meta,
            "prompt_length": self.prompt_length,
            "output_ids": self.output_ids,
            "output_text": self.output_text,
            "token_counts": dict(zip(CLASSES, (int(c) for c in self.counts), strict=True)),
            "allocation": _table(self.allocation),
            "efficiency": _table(self.efficiency),
            "query_positions": self.query_positions.tolist(),
            "classes": self.classes.tolist(),
        }
        if with_shares:
            out["shares"] = [_table(layer) for layer in self.shares]
        if self.maps:
            out["maps"] = {str(layer): _table(m) for layer, m in sorted(self.maps.items())}
        return out


def _table(t: torch.Tensor) -> list:
    """Nested lists with NaN as None (valid JSON)."""
    return [_table(row) for row in t] if t.dim() > 1 else [None if math.isnan(v) else float(v) for v in t.tolist()]


def analyze(
    model: nn.Module,
    inputs: dict[str, Any],
    max_new_tokens: int = 8,
    queries: str = "output",
    map_layers: Sequence[int] = (),
    map_bins: int = 64,
    tokenizer: Any = None,
    block_bytes: int = BLOCK_BYTES,
) -> SampleAnalysis:
    """Attention allocation and efficiency per layer and token class for one prompt (batch of one).

    ``inputs`` are the processor's outputs for one prompt. The model first generates up to
    ``max_new_tokens`` greedily; one more forward over prompt + output (no cache) then feeds every
    layer's attention pre-hook, which recomputes the needed attention rows from queries and keys (any
    attention implementation; bounded memory). ``map_layers`` also get a full (all queries) attention
    map pooled to ``map_bins`` x ``map_bins`` blocks (mean attention per block).
    """
    from fastv.patch import is_applied

    if is_applied(model):
        raise FastVError("Analyse the unpruned model: call fastv.remove(model) first.")
    if queries not in QUERY_SETS:
        raise ValueError(f"queries={queries!r} is unknown; choose one of {', '.join(QUERY_SETS)}.")
    input_ids = inputs["input_ids"]
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        raise FastVError(f"analyze takes one prompt (input_ids of shape (1, n)), got {tuple(input_ids.shape)}.")
    mask = inputs.get("attention_mask")
    if mask is not None and not bool(mask.bool().all()):
        raise FastVError("analyze takes an unpadded prompt (attention_mask all ones).")
    family = family_for(model)
    prompt_length = input_ids.shape[1]
    full = dict(inputs)
    output_ids: list[int] = []
    if max_new_tokens > 0:
        with torch.no_grad():
            # A generated placeholder would be read as a new image in the analysis forward: forbid it.
            banned = [[i] for i in family.prunable_token_ids(model.config)]
            sequences = model.generate(
                **inputs, max_new_tokens=max_new_tokens, do_sample=False, bad_words_ids=banned or None
            )
        output_ids = sequences[0, prompt_length:].tolist()
        full = _extend(inputs, sequences)
    n = full["input_ids"].shape[1]
    classes = token_classes(family.prunable_mask(model, full["input_ids"])[0].cpu(), prompt_length)
    query_positions = _query_positions(queries, prompt_length, n)
    language_model = family.language_model(model)
    layers = family.decoder_layers(language_model)
    bad = [layer for layer in map_layers if not 0 <= layer < len(layers)]
    if bad:
        raise ValueError(f"map layers {bad} are outside [0, {len(layers) - 1}].")
    text_config = family.text_config(language_model)
    recurrent = [i for i in map_layers if family.is_recurrent(i, text_config)]
    if recurrent:
        attending = [i for i in range(len(layers)) if not family.is_recurrent(i, text_config)]
        raise ValueError(
            f"map layers {recurrent} are recurrent ({text_config.layer_types[recurrent[0]]!r}) layers with no "
            f"attention map; this decoder's attention layers are {attending}."
        )
    blocks = family.block_ids(model, full["input_ids"], full) if hasattr(family, "block_ids") else None
    probe = AttentionProbe(
        family,
        layers,
        text_config,
        classes,
        len(CLASSES),
        query_positions,
        map_layers,
        map_bins,
        block_bytes,
        None if blocks is None else blocks[0].cpu(),
    )
    with probe, torch.no_grad():
        model(**full, use_cache=False, logits_to_keep=1)
    no_attention = torch.full((len(query_positions), len(CLASSES)), torch.nan, dtype=torch.float64)
    shares = torch.stack([probe.stats[i].shares if i in probe.stats else no_attention for i in range(len(layers))])
    maps = {i: probe.stats[i].pooled for i in map_layers}
    text = tokenizer.decode(output_ids, skip_special_tokens=True) if tokenizer is not None and output_ids else None
    return SampleAnalysis(prompt_length, output_ids, classes, query_positions, shares, maps, text)


def _extend(inputs: dict[str, Any], sequences: torch.Tensor) -> dict[str, Any]:
    """``inputs`` for prompt + output: per-token tensors (masks, ``mm_token_type_ids``) grow with the output.

    Output tokens are real (mask 1) text (type 0).
    """
    prompt_length = inputs["input_ids"].shape[1]
    extra = sequences.shape[1] - prompt_length
    full = dict(inputs, input_ids=sequences)
    for key, value in inputs.items():
        if key == "input_ids" or not isinstance(value, torch.Tensor) or value.shape != (1, prompt_length):
            continue
        fill = 1 if key == "attention_mask" else 0
        full[key] = torch.cat([value, value.new_full((1, extra), fill)], dim=1)
    return full


def _query_positions(queries: str, prompt_length: int, n: int) -> torch.Tensor:
    if queries == "last":
        return torch.tensor([prompt_length - 1])
    if queries == "all":
        return torch.arange(n)
    if n == prompt_length:
        raise FastVError(
            "queries='output' needs generated tokens, but none were generated (max_new_tokens=0 or an immediate "
            "end of sequence). Use max_new_tokens > 0, or queries='last' / 'all'."
        )
    return torch.arange(prompt_length, n)
