"""Wall-clock, memory and KV-cache benchmark of FastV against the same model unpatched.

Everything runs in one process on one model: each repeat runs the baseline and every FastV setting
back to back (``apply`` before, ``remove`` after; the order flips every repeat), so slow drifts of a
shared machine hit all variants alike. Speedups are medians of the per-repeat paired ratios.

One trial of a variant: a prefill (``use_cache=True``, logits for the last position, like
``generate``), ``decode_steps`` greedy single-token steps on that cache (per-token time = their
median), then ``generate`` for a short and a long answer (``min_new_tokens = max_new_tokens``). The
KV cache is measured from its tensors after the prefill and checked against the exact formula.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from fastv.compat import output_cache, with_cache
from fastv.config import FastVConfig
from fastv.measure.flops import flops, kv_cache_bytes
from fastv.measure.kvcache import cache_bytes, cache_lengths
from fastv.measure.memory import PeakMemory
from fastv.measure.shapes import text_shape
from fastv.measure.workload import Workload, local_workload, preset_workload


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, fn: Callable[[], Any]) -> tuple[float, Any]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


@dataclass
class Trial:
    """One measured run of one variant."""

    prefill_s: float
    decode_token_s: float
    gen_short_s: float | None
    gen_long_s: float | None
    peak_bytes: int
    peak_delta_bytes: int
    rank_s: float | None


@dataclass
class VariantResult:
    """All trials of one variant (``fastv`` None = the unpatched baseline) and their summary."""

    label: str
    fastv: FastVConfig | None
    n: int
    n_hat: int
    kv_bytes_measured: int = 0
    kv_bytes_formula: int = 0
    kv_lengths: list[int] = field(default_factory=list)
    predicted_prefill_speedup: float = 1.0
    predicted_decode_speedup_bytes: float = 1.0
    trials: list[Trial] = field(default_factory=list)
    speedups: dict[str, list[float]] = field(default_factory=dict)  # metric -> paired ratios

    def stat(self, metric: str, how: Callable[[list[float]], float] = statistics.median) -> float | None:
        values = [getattr(t, metric) for t in self.trials if getattr(t, metric) is not None]
        return how(values) if values else None

    def speedup(self, metric: str) -> float | None:
        ratios = self.speedups.get(metric)
        return statistics.median(ratios) if ratios else None

    def to_dict(self, batch: int, short_tokens: int, long_tokens: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "k": None if self.fastv is None else self.fastv.k,
            "ratio": 0.0 if self.fastv is None else self.fastv.ratio,
            "rank": None if self.fastv is None else self.fastv.rank,
            "n": self.n,
            "n_hat": self.n_hat,
            "kv_cache_bytes_measured": self.kv_bytes_measured,
            "kv_cache_bytes_formula": self.kv_bytes_formula,
            "kv_cache_matches_formula": self.kv_bytes_measured == self.kv_bytes_formula,
            "kv_cache_lengths": self.kv_lengths,
            "predicted_prefill_speedup_flops": self.predicted_prefill_speedup,
            "predicted_decode_speedup_bytes": self.predicted_decode_speedup_bytes,
            "trials": [asdict(t) for t in self.trials],
        }
        for metric in ("prefill_s", "decode_token_s", "gen_short_s", "gen_long_s", "peak_delta_bytes", "rank_s"):
            out[f"{metric}_median"] = self.stat(metric)
            out[f"{metric}_min"] = self.stat(metric, min)
            out[f"{metric}_speedup"] = self.speedup(metric)
        prefill, decode = self.stat("prefill_s"), self.stat("decode_token_s")
        short, long_ = self.stat("gen_short_s"), self.stat("gen_long_s")
        out["prefill_tokens_per_s"] = batch * self.n / prefill if prefill else None
        out["decode_tokens_per_s"] = batch / decode if decode else None
        out["gen_short_tokens_per_s"] = batch * short_tokens / short if short else None
        out["gen_long_tokens_per_s"] = batch * long_tokens / long_ if long_ else None
        rank = self.stat("rank_s")
        out["rank_share_of_prefill"] = rank / prefill if rank is not None and prefill else None
        return out


@dataclass
class BenchResult:
    workload: str
    description: str
    layout: tuple[int, int, int]
    batch_size: int
    device: str
    dtype: str
    repeats: int
    warmup: int
    decode_steps: int
    short_tokens: int
    long_tokens: int
    variants: list[VariantResult]
    decode_weight_bytes: int
    rank_overhead_of_baseline_prefill: float | None = None
    environment: dict[str, str] = field(default_factory=dict)
    model_config: Any = field(default=None, repr=False)  # for plots; not serialised

    @property
    def baseline(self) -> VariantResult:
        return self.variants[0]

    def to_dict(self) -> dict[str, Any]:
        skip = ("variants", "model_config")
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        data["variants"] = [v.to_dict(self.batch_size, self.short_tokens, self.long_tokens) for v in self.variants]
        return data


def _generate(model: Any, inputs: dict[str, torch.Tensor], tokens: int) -> Any:
    return model.generate(
        **inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, num_beams=1, use_cache=True
    )


def _decode_steps(model: Any, inputs: dict[str, torch.Tensor], out: Any, steps: int, device: torch.device) -> float:
    """Median seconds of one greedy decode step on the prefill's cache."""
    cache = output_cache(out)
    token = out.logits[:, -1:].argmax(-1)
    mask = torch.ones(inputs["input_ids"].shape, dtype=torch.long, device=device)
    times = []
    for _ in range(steps):
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        dt, step = _timed(
            device, lambda t=token, m=mask: model(**with_cache(cache, input_ids=t, attention_mask=m, use_cache=True))
        )
        times.append(dt)
        token = step.logits[:, -1:].argmax(-1)
    return statistics.median(times) if times else float("nan")


@contextmanager
def _rank_timer(model: Any, k: int, device: torch.device, sink: list[float]):
    """Times FastV's ranking: a forward hook on layer k-1's attention runs before FastV's (prepend)
    and one after it; FastV's hook (rank + keep plan) runs in between."""
    from fastv.families import family_for

    family = family_for(model)
    attention = family.attention(family.decoder_layers(family.language_model(model))[k - 1])
    start: list[float] = []

    def before(*_: Any) -> None:
        _sync(device)
        start.append(time.perf_counter())

    def after(*_: Any) -> None:
        _sync(device)
        if start:
            sink.append(time.perf_counter() - start.pop())

    handles = [attention.register_forward_hook(before, prepend=True), attention.register_forward_hook(after)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _trial(
    work: Workload, cfg: FastVConfig | None, decode_steps: int, short: int, long_: int, record: VariantResult | None
) -> Trial:
    """One run of one variant; ``record`` (on the first measured trial) receives the KV cache size."""
    import fastv

    model, inputs, device = work.model, work.inputs, work.device
    rank_times: list[float] = []
    if cfg is not None:
        fastv.apply(model, cfg)
    try:
        with torch.inference_mode():
            with PeakMemory(device) as mem:
                if cfg is not None:
                    with _rank_timer(model, cfg.k, device, rank_times):
                        prefill_s, out = _timed(device, lambda: model(**inputs, use_cache=True, logits_to_keep=1))
                else:
                    prefill_s, out = _timed(device, lambda: model(**inputs, use_cache=True, logits_to_keep=1))
                if record is not None:
                    record.kv_bytes_measured = cache_bytes(output_cache(out))
                    record.kv_lengths = cache_lengths(output_cache(out))
                decode_s = _decode_steps(model, inputs, out, decode_steps, device) if decode_steps else float("nan")
                del out
            gen_short = _timed(device, lambda: _generate(model, inputs, short))[0] if short else None
            gen_long = _timed(device, lambda: _generate(model, inputs, long_))[0] if long_ else None
    finally:
        if cfg is not None:
            fastv.remove(model)
    return Trial(
        prefill_s=prefill_s,
        decode_token_s=decode_s,
        gen_short_s=gen_short,
        gen_long_s=gen_long,
        peak_bytes=mem.peak,
        peak_delta_bytes=mem.delta,
        rank_s=sum(rank_times) if rank_times else None,
    )


def _variant(work: Workload, cfg: FastVConfig | None, param_bytes: int, dtype_bytes: int) -> VariantResult:
    config = work.model.config
    t = text_shape(config)
    lay = work.layout
    setting = cfg or FastVConfig(k=1, ratio=0.0)
    # SDPA / FlashAttention run causal kernels that skip the upper triangle; eager computes it all.
    attention = "dense" if getattr(config, "_attn_implementation", "eager") == "eager" else "causal"
    report = flops(config, [lay] * work.batch_size, setting, attention=attention)
    n = report.n[0]
    n_hat = report.n_hat[0] if cfg is not None else n
    k = setting.k
    kv_formula = work.batch_size * kv_cache_bytes(t, n, n_hat, k, dtype_bytes)
    kv_base = work.batch_size * kv_cache_bytes(t, n, n, k, dtype_bytes)
    label = "baseline" if cfg is None else f"K{cfg.k} R{100 * cfg.ratio:g}" + (f" keep{cfg.keep}" if cfg.keep else "")
    return VariantResult(
        label=label,
        fastv=cfg,
        n=n,
        n_hat=n_hat,
        kv_bytes_formula=kv_formula,
        predicted_prefill_speedup=report.predicted_speedup if cfg is not None else 1.0,
        # Decode reads every weight and the whole KV cache once per step: time ~ bytes moved.
        predicted_decode_speedup_bytes=(param_bytes + kv_base) / (param_bytes + kv_formula),
    )


def _decode_weight_bytes(model: Any) -> int:
    """Weights one decode step reads: all but the input embedding table, vision tower and projector."""
    skip = {id(p) for p in model.get_input_embeddings().parameters()}
    for name in ("vision_tower", "multi_modal_projector"):
        module = getattr(getattr(model, "model", model), name, None)
        if module is not None:
            skip.update(id(p) for p in module.parameters())
    return sum(p.numel() * p.element_size() for p in model.parameters() if id(p) not in skip)


def _environment(device: torch.device) -> dict[str, str]:
    import platform

    import transformers

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": str(torch.get_num_threads()),
        "cpu": _cpu_model(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def bench(
    model: str | Workload = "llava-1.5-7b",
    settings: Iterable[tuple[int, float] | FastVConfig] = ((2, 0.5), (2, 0.75)),
    *,
    scale: int = 4,
    layers: int | None = None,
    batch_size: int = 1,
    layout: tuple[int, int, int] | None = None,
    repeats: int = 3,
    warmup: int = 1,
    decode_steps: int = 16,
    short_tokens: int = 8,
    long_tokens: int = 256,
    rank: str = "last_token",
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    progress: Callable[[str], None] | None = None,
) -> BenchResult:
    """Benchmark baseline vs each FastV setting on a preset (random weights), a local path or a Workload.

    ``model``: a preset name (built at ``1/scale`` width and depth, ``layers`` overriding depth), a
    local LLaVA checkpoint directory, or a ready ``Workload``. ``settings``: ``(k, ratio)`` pairs or
    FastVConfigs. ``progress`` is called with a label after each trial.
    """
    from pathlib import Path

    from fastv.measure.presets import PRESETS, Layout

    if isinstance(model, Workload):
        work = model
    elif model in PRESETS:
        lay = Layout(*layout) if layout else None
        work = preset_workload(
            model, scale=scale, layers=layers, batch_size=batch_size, layout=lay, device=device, dtype=dtype
        )
    elif Path(model).is_dir():
        before, image, after = layout or (35, 0, 40)
        work = local_workload(
            model, batch_size=batch_size, before=before, images=max(1, image), after=after, device=device, dtype=dtype
        )
    else:
        raise ValueError(f"{model!r} is neither a preset ({', '.join(PRESETS)}) nor a local directory.")

    configs = [s if isinstance(s, FastVConfig) else FastVConfig(k=s[0], ratio=s[1], rank=rank) for s in settings]
    dev = work.device
    param_bytes = _decode_weight_bytes(work.model)
    dtype_bytes = next(work.model.parameters()).element_size()
    variants = [_variant(work, c, param_bytes, dtype_bytes) for c in [None, *configs]]
    all_configs: list[FastVConfig | None] = [None, *configs]

    for i in range(warmup):
        for cfg in all_configs:
            _trial(work, cfg, min(decode_steps, 2), min(short_tokens, 2), 0, None)
            if progress:
                progress(f"warm-up {i + 1}/{warmup}: {cfg.describe() if cfg else 'baseline'}")
    for r in range(repeats):
        order = list(range(len(all_configs)))
        if r % 2:
            order.reverse()
        trials: dict[int, Trial] = {}
        for idx in order:
            cfg, var = all_configs[idx], variants[idx]
            trials[idx] = _trial(work, cfg, decode_steps, short_tokens, long_tokens, var if r == 0 else None)
            var.trials.append(trials[idx])
            if progress:
                progress(f"repeat {r + 1}/{repeats}: {var.label}")
        base = trials[0]
        for idx, var in enumerate(variants):
            for metric in ("prefill_s", "decode_token_s", "gen_short_s", "gen_long_s"):
                b, v = getattr(base, metric), getattr(trials[idx], metric)
                if b and v:
                    var.speedups.setdefault(metric, []).append(b / v)

    rank_medians = [v.stat("rank_s") for v in variants[1:] if v.stat("rank_s") is not None]
    base_prefill = variants[0].stat("prefill_s")
    return BenchResult(
        workload=work.name,
        description=work.description,
        layout=(work.layout.before, work.layout.image, work.layout.after),
        batch_size=work.batch_size,
        device=str(dev),
        dtype=str(next(work.model.parameters()).dtype).removeprefix("torch."),
        repeats=repeats,
        warmup=warmup,
        decode_steps=decode_steps,
        short_tokens=short_tokens,
        long_tokens=long_tokens,
        variants=variants,
        decode_weight_bytes=param_bytes,
        rank_overhead_of_baseline_prefill=max(rank_medians) / base_prefill if rank_medians and base_prefill else None,
        environment=_environment(dev),
        model_config=work.model.config,
    )


def settings_from_strings(items: Sequence[str]) -> list[tuple[int, float]]:
    """Parse ``["2:0.5", "2:0.75"]`` into ``[(2, 0.5), (2, 0.75)]``."""
    out = []
    for item in items:
        for part in item.split(","):
            k, _, ratio = part.partition(":")
            if not ratio:
                raise ValueError(f"setting {part!r} must look like K:RATIO, e.g. 2:0.5")
            out.append((int(k), float(ratio)))
    return out
