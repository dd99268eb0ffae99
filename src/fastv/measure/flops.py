"""FLOPs of a FastV setting: the paper's Eq. 5 (both readings) and an exact count for the architecture.

Eq. 5 (Chen et al. 2024) per decoder layer, n tokens, hidden d, FFN m: ``4nd^2 + 2n^2d + 2ndm``. It
counts multiply-accumulates of an MHA layer with a 2-matrix FFN. FastV keeps ``K f(n) + (L-K) f(n_hat)``
of ``L f(n)``. Here ``n_hat = n - floor(R * n_image)``: R applies to image tokens only, as FastV's code
does (system and text tokens are never dropped). The paper's own reading, ``n_hat = (1-R) n``, is
reported alongside for transparency.

The exact count is in FLOPs (2 per multiply-accumulate), matmuls only (norms, RoPE, activations,
softmax and residual adds are left out: they are O(n d) and scale with n like the rest; so is the rotary
cos/sin table, built once per forward, which transformers up to 5.18 computes as a matmul with an inner size
of 1, see :func:`fastv.compat.rotary_table_is_matmul`). Per decoder
layer: q/o projections (``2 n d q_dim`` each), grouped-query k/v projections (``2 n d kv_dim`` each),
attention scores and weighted sum (``2 n^2 q_dim`` each, dense n x n as eager/SDPA on CPU compute them;
causal kernels such as FlashAttention skip about half), and ``ffn_matrices`` FFN matmuls
(``2 n d m`` each; 3 for SwiGLU). The lm_head is counted for the last position only (what
``generate`` computes at prefill); the all-positions figure is reported separately. The vision tower
and projector are counted separately: FastV does not change them. Decoders whose layers differ
(hybrid linear attention, MoE, per-layer head sizes) are counted layer by layer from their modules
(:mod:`fastv.measure.layers`): a pruned linear-attention layer saves linearly in the dropped tokens.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fastv.config import FastVConfig
from fastv.measure.layers import LayerShape
from fastv.measure.presets import Layout, Preset, get_preset
from fastv.measure.shapes import TextShape, VisionShape, text_shape, vision_shape


def eq5_layer(n: float, d: int, m: int) -> float:
    """The paper's per-layer cost ``4nd^2 + 2n^2d + 2ndm`` (multiply-accumulates)."""
    return 4 * n * d * d + 2 * n * n * d + 2 * n * d * m


def eq5_ratio(n: float, n_hat: float, layers: int, k: int, d: int, m: int) -> float:
    """FastV's share of the baseline: ``(K f(n) + (L-K) f(n_hat)) / (L f(n))``."""
    full = eq5_layer(n, d, m)
    return (k * full + (layers - k) * eq5_layer(n_hat, d, m)) / (layers * full)


def layer_flops(t: TextShape, n: int, kv_len: int | None = None, causal: bool = False) -> dict[str, int]:
    """Exact matmul FLOPs of one decoder layer for ``n`` queries attending to ``kv_len`` keys.

    ``causal`` counts only the query-key pairs a causal kernel computes (``n(n+1)/2`` for a prefill
    without past), as SDPA's CPU and FlashAttention kernels do; dense counts all ``n * kv_len``.
    """
    kv_len = n if kv_len is None else kv_len
    past = kv_len - n
    pairs = n * past + n * (n + 1) // 2 if causal else n * kv_len
    return {
        "q_o_proj": 2 * 2 * n * t.hidden * t.q_dim,
        "k_v_proj": 2 * 2 * n * t.hidden * t.kv_dim,
        "attn_scores": 2 * pairs * t.q_dim,
        "attn_weighted_sum": 2 * pairs * t.q_dim,
        "ffn": t.ffn_matrices * 2 * n * t.hidden * t.ffn,
    }


def attention_pairs(n: int, kv_len: int, causal: bool, window: int | None = None) -> int:
    """Query-key pairs scored: dense ``n * kv_len``, or causal (and within ``window`` when sliding).

    A decode step's sliding cache holds at most ``window`` keys; a dense prefill scores all pairs
    and masks those outside the window (as eager attention does).
    """
    past = kv_len - n
    if not causal:
        return n * (min(kv_len, window) if window is not None and n == 1 else kv_len)
    if window is None:
        return n * past + n * (n + 1) // 2
    first, last = past + 1, past + n  # keys seen by the first and last query, before the window
    inside = range(first, min(last, window - 1) + 1)  # queries that see fewer than `window` keys
    return sum(inside) + window * (n - len(inside))


def shaped_layer_flops(
    layer: LayerShape, hidden: int, n: int, kv_len: int | None = None, causal: bool = False
) -> dict[str, int]:
    """Exact matmul FLOPs of one layer of a decoder whose layers differ (``TextShape.per_layer``)."""
    kv_len = n if kv_len is None else kv_len
    out = {"mixer_proj": 2 * n * layer.mixer_macs, "ffn": 2 * n * layer.ffn_macs}
    if layer.attends:
        pairs = attention_pairs(n, kv_len, causal, layer.window)
        out["attn_scores"] = out["attn_weighted_sum"] = 2 * pairs * layer.q_dim
    else:
        out["recurrence"] = 2 * n * layer.recurrence_macs
    if layer.router_macs:
        out["router"] = 2 * n * layer.router_macs
    return out


def decoder_layer_flops(
    t: TextShape, i: int, n: int, kv_len: int | None = None, causal: bool = False
) -> dict[str, int]:
    """Layer ``i`` of ``t``: the uniform count, or the per-layer one where layers differ."""
    if not t.per_layer:
        return layer_flops(t, n, kv_len, causal)
    return shaped_layer_flops(t.per_layer[i], t.hidden, n, kv_len, causal)


def vision_flops(v: VisionShape, images: int) -> dict[str, int]:
    """Exact matmul FLOPs of the vision tower (all its layers run) and the projector."""
    n = v.tokens
    per_layer = 2 * 4 * n * v.hidden * v.hidden + 2 * 2 * n * n * v.hidden + v.ffn_matrices * 2 * n * v.hidden * v.ffn
    patches = n - 1 if v.out_tokens == n - 1 else n
    tower = images * (v.layers * per_layer + 2 * patches * v.patch_in * v.hidden)
    widths = v.projector
    projector = images * sum(2 * v.out_tokens * a * b for a, b in itertools.pairwise(widths))
    return {"vision_tower": tower, "projector": projector}


def kv_cache_bytes(t: TextShape, n: int, n_hat: int, k: int, dtype_bytes: int) -> int:
    """KV cache of one sample: ``2 * bytes * kv_heads * head_dim * (K n + (L-K) n_hat)``.

    Where layers differ, only attention layers count (a recurrent layer's state has a fixed size that
    pruning does not change), each with its own key width, a sliding one up to its window.
    """
    if not t.per_layer:
        return 2 * dtype_bytes * t.kv_heads * t.head_dim * (k * n + (t.layers - k) * n_hat)
    total = 0
    for i, layer in enumerate(t.per_layer):
        tokens = n if i < k else n_hat
        if layer.attends:
            total += 2 * dtype_bytes * layer.kv_dim * (tokens if layer.window is None else min(tokens, layer.window))
    return total


@dataclass
class FlopsReport:
    """FLOPs of one model + prompt batch + FastV setting; sums are over the batch (no padding)."""

    model: str
    text: TextShape
    fastv: FastVConfig
    layouts: list[Layout]
    n: list[int]
    n_hat: list[int]
    eq5_baseline: float
    eq5_fastv: float
    eq5_fastv_all_tokens: float
    attention: str
    exact_baseline: dict[str, int]
    exact_fastv: dict[str, int]
    lm_head_all_positions: tuple[int, int]
    vision: dict[str, int] = field(default_factory=dict)
    decode_per_token: tuple[int, int] = (0, 0)
    kv_cache_bytes_fp16: tuple[int, int] = (0, 0)

    @property
    def eq5_one_layer(self) -> float:
        """Eq. 5 of a single unpruned layer for the first sample: the paper's absolute "99.3B" is this."""
        return eq5_layer(self.n[0], self.text.hidden, self.text.ffn)

    @property
    def eq5_ratio(self) -> float:
        """Eq. 5, R on image tokens only (FastV's code)."""
        return self.eq5_fastv / self.eq5_baseline

    @property
    def eq5_ratio_all_tokens(self) -> float:
        """Eq. 5, R on all n tokens (the paper's formula as written)."""
        return self.eq5_fastv_all_tokens / self.eq5_baseline

    @property
    def exact_llm_baseline(self) -> int:
        return sum(self.exact_baseline.values())

    @property
    def exact_llm_fastv(self) -> int:
        return sum(self.exact_fastv.values())

    @property
    def exact_ratio(self) -> float:
        """Language model (decoder layers + last-position lm_head), FastV / baseline."""
        return self.exact_llm_fastv / self.exact_llm_baseline

    @property
    def vision_total(self) -> int:
        return sum(self.vision.values())

    @property
    def exact_ratio_with_vision(self) -> float:
        """The whole prefill including vision tower and projector (which FastV leaves unchanged)."""
        return (self.exact_llm_fastv + self.vision_total) / (self.exact_llm_baseline + self.vision_total)

    @property
    def predicted_speedup(self) -> float:
        """Prefill speedup if time were proportional to the exact FLOPs (vision included)."""
        return 1.0 / self.exact_ratio_with_vision

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "text_shape": self.text.to_dict(),
            "fastv": {"k": self.fastv.k, "ratio": self.fastv.ratio, "keep": self.fastv.keep},
            "layouts": [[lay.before, lay.image, lay.after] for lay in self.layouts],
            "n": self.n,
            "n_hat": self.n_hat,
            "eq5": {
                "one_layer_macs": self.eq5_one_layer,
                "baseline_macs": self.eq5_baseline,
                "fastv_macs": self.eq5_fastv,
                "ratio_image_tokens": self.eq5_ratio,
                "fastv_macs_all_tokens": self.eq5_fastv_all_tokens,
                "ratio_all_tokens": self.eq5_ratio_all_tokens,
            },
            "exact": {
                "baseline": self.exact_baseline,
                "fastv": self.exact_fastv,
                "llm_baseline": self.exact_llm_baseline,
                "llm_fastv": self.exact_llm_fastv,
                "llm_ratio": self.exact_ratio,
                "attention": self.attention,
                "lm_head_counted": "last position per sample",
                "lm_head_all_positions": list(self.lm_head_all_positions),
                "vision": self.vision,
                "ratio_with_vision": self.exact_ratio_with_vision,
                "predicted_prefill_speedup": self.predicted_speedup,
            },
            "decode_flops_per_token": list(self.decode_per_token),
            "kv_cache_bytes_fp16": list(self.kv_cache_bytes_fp16),
        }


def resolve_model(model: Any) -> tuple[str, TextShape, VisionShape | None, Preset | None]:
    if isinstance(model, str):
        preset = get_preset(model)
        return preset.name, preset.text, preset.vision, preset
    if isinstance(model, Preset):
        return model.name, model.text, model.vision, model
    config = getattr(model, "config", model)  # a model or a config
    name = getattr(config, "name_or_path", "") or type(config).__name__
    return name, text_shape(config), vision_shape(config), None


def _layouts(layout: Any, preset: Preset | None) -> list[Layout]:
    if layout is None:
        if preset is None:
            raise ValueError("flops() needs a layout (before, image, after) unless the model is a preset name.")
        return [preset.layout]
    if isinstance(layout, Layout):
        return [layout]
    if isinstance(layout, Sequence) and len(layout) == 3 and all(isinstance(x, int) for x in layout):
        return [Layout(*layout)]
    return [item if isinstance(item, Layout) else Layout(*item) for item in layout]


def flops(
    model: Any,
    layout: Layout | tuple[int, int, int] | Sequence[Layout | tuple[int, int, int]] | None = None,
    fastv: FastVConfig | None = None,
    attention: str = "dense",
) -> FlopsReport:
    """Count prefill FLOPs for ``model`` (preset name, ``Preset``, transformers config or model).

    ``layout`` is one prompt ``(before, image, after)`` or a per-sample list (a batch; summed,
    no padding). Presets default to their Table 1 layout. ``fastv`` defaults to FastV(K=2, R=0.5).
    ``attention``: "dense" (all n x n scores, as eager attention and FlopCounterMode count) or
    "causal" (the lower triangle only, as causal SDPA / FlashAttention kernels compute).
    """
    if attention not in ("dense", "causal"):
        raise ValueError(f"attention must be 'dense' or 'causal', got {attention!r}.")
    causal = attention == "causal"
    cfg = fastv or FastVConfig()
    name, t, v, preset = resolve_model(model)
    if not 1 <= cfg.k <= t.layers:
        raise ValueError(f"k={cfg.k} must be within 1..{t.layers} (the model's decoder layers).")
    lays = _layouts(layout, preset)
    ns = [lay.n for lay in lays]
    n_hats = [lay.n - cfg.n_dropped(lay.image) for lay in lays]
    L, k = t.layers, cfg.k
    keep_share = 1.0 - (cfg.ratio if cfg.keep is None else 0.0)

    eq5_base = sum(L * eq5_layer(n, t.hidden, t.ffn) for n in ns)
    eq5_fast = sum(
        k * eq5_layer(n, t.hidden, t.ffn) + (L - k) * eq5_layer(nh, t.hidden, t.ffn)
        for n, nh in zip(ns, n_hats, strict=True)
    )
    eq5_all = sum(
        k * eq5_layer(n, t.hidden, t.ffn)
        + (L - k) * eq5_layer(keep_share * n if cfg.keep is None else nh, t.hidden, t.ffn)
        for n, nh in zip(ns, n_hats, strict=True)
    )

    base: dict[str, int] = {}
    fast: dict[str, int] = {}
    for n, nh in zip(ns, n_hats, strict=True):
        for i in range(L):
            for key, val in decoder_layer_flops(t, i, n, causal=causal).items():
                base[key] = base.get(key, 0) + val
            for key, val in decoder_layer_flops(t, i, n if i < k else nh, causal=causal).items():
                fast[key] = fast.get(key, 0) + val
    lm_last = len(ns) * 2 * t.hidden * t.vocab
    base["lm_head_last"] = lm_last
    fast["lm_head_last"] = lm_last

    vis: dict[str, int] = {}
    for lay in lays if v is not None else []:
        if v.out_tokens > 0:
            part = vision_flops(v, math.ceil(lay.image / v.out_tokens))
        else:  # dynamic resolution (Qwen2-VL): one image of lay.image merged tokens.
            merge = v.projector[0] // v.hidden
            part = vision_flops(replace(v, tokens=lay.image * merge, out_tokens=lay.image), 1)
        for key, val in part.items():
            vis[key] = vis.get(key, 0) + val

    # One decode step after the prompt: q_len 1, keys = prompt (pruned in layers >= k) + the new token.
    def decode(ns_: list[int], nhs: list[int]) -> int:
        total = 0
        for n, nh in zip(ns_, nhs, strict=True):
            total += sum(sum(decoder_layer_flops(t, i, 1, (n if i < k else nh) + 1).values()) for i in range(L))
            total += 2 * t.hidden * t.vocab
        return total

    return FlopsReport(
        model=name,
        text=t,
        fastv=cfg,
        layouts=lays,
        n=ns,
        n_hat=n_hats,
        eq5_baseline=eq5_base,
        eq5_fastv=eq5_fast,
        eq5_fastv_all_tokens=eq5_all,
        attention=attention,
        exact_baseline=base,
        exact_fastv=fast,
        lm_head_all_positions=(2 * t.hidden * t.vocab * sum(ns), 2 * t.hidden * t.vocab * sum(n_hats)),
        vision=vis,
        decode_per_token=(decode(ns, ns), decode(ns, n_hats)),
        kv_cache_bytes_fp16=(
            sum(kv_cache_bytes(t, n, n, k, 2) for n in ns),
            sum(kv_cache_bytes(t, n, nh, k, 2) for n, nh in zip(ns, n_hats, strict=True)),
        ),
    )
