"""The lmms-eval model ``fastv``: any FastV-supported Hugging Face VLM, pruned with ``fastv.apply``.

``--model_args pretrained=PATH|HUB_ID|builtin,k=2,ratio=0.5,rank=last_token`` (plus ``keep``, ``seed``, ``budget``,
``attn_implementation``, ``device``, ``dtype``, ``chat_template``). No ``k`` or ``ratio=0`` is the
unpruned baseline through the same code. Requests are batched (left padding) per task and
generation settings. Log-likelihoods are scored by teacher-forcing the continuation through
``generate``, so ranking, positions and the KV cache are exactly those of generation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from lmms_eval.api.instance import GenerationResult, Instance
from lmms_eval.api.model import lmms
from lmms_eval.models.model_utils.gen_metrics import log_metrics
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor, LogitsProcessor, LogitsProcessorList

import fastv
from fastv.config import FastVConfig
from fastv.families import family_for
from fastv.integrations.lmms_eval import ledger
from fastv.integrations.lmms_eval.options import describe, fastv_config, resolve_pretrained
from fastv.integrations.lmms_eval.prompts import build_prompt, cut_at_stops

_IGNORED_ARGS = ("max_batch_size", "revision_hint")


def _dtype(name: Any, device: str) -> Any:
    if name is None:  # fp16 checkpoints are slow or unsupported on CPU; "auto" keeps the stored dtype.
        return torch.float32 if device == "cpu" else "auto"
    if isinstance(name, torch.dtype) or name == "auto":
        return name
    value = getattr(torch, str(name), None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"model_args dtype={name!r} is not a torch dtype (e.g. float32, bfloat16, float16, auto).")
    return value


class _ForceContinuation(LogitsProcessor):
    """Forces each row's continuation tokens (then ``filler``), so generation walks the scored path."""

    def __init__(self, continuations: list[list[int]], prompt_len: int, filler: int) -> None:
        self.continuations, self.prompt_len, self.filler = continuations, prompt_len, filler

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.prompt_len
        forced = torch.full_like(scores, float("-inf"))
        for row, cont in enumerate(self.continuations):
            forced[row, cont[step] if step < len(cont) else self.filler] = 0.0
        return forced


def _score(logits: Sequence[torch.Tensor], continuations: list[list[int]]) -> list[tuple[float, bool]]:
    """Sum of log-probabilities of each continuation under the raw (unprocessed) step logits, and greediness."""
    out = []
    for row, cont in enumerate(continuations):
        logprob, greedy = 0.0, True
        for step, token in enumerate(cont):
            if step >= len(logits):  # generation stopped early (an end-of-sequence token inside a continuation)
                return [*out, *[(float("-inf"), False)] * (len(continuations) - len(out))]
            row_logits = logits[step][row].float()
            logprob += float(torch.log_softmax(row_logits, dim=-1)[token])
            greedy &= int(row_logits.argmax()) == token
        out.append((logprob, greedy))
    return out


class FastVModel(lmms):
    """lmms-eval model running a transformers VLM with (or without) FastV pruning."""

    def __init__(
        self,
        pretrained: str | None = None,
        k: Any = None,
        ratio: Any = None,
        rank: str | None = None,
        keep: Any = None,
        seed: Any = 0,
        budget: str | None = None,
        attn_implementation: str | None = None,
        device: str | None = None,
        dtype: Any = None,
        batch_size: Any = 1,
        chat_template: str = "auto",
        revision: str | None = None,
        trust_remote_code: bool = False,
        model: torch.nn.Module | None = None,
        processor: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        unknown = sorted(set(kwargs) - set(_IGNORED_ARGS))
        if unknown:
            raise ValueError(f"Unknown model_args for fastv: {', '.join(unknown)}.")
        self.fastv_config: FastVConfig | None = fastv_config(
            k=k, ratio=ratio, rank=rank, keep=keep, seed=seed, budget=budget
        )
        if chat_template not in ("auto", "none"):
            raise ValueError(f"model_args chat_template={chat_template!r} must be 'auto' or 'none'.")
        self.chat_template = chat_template
        self.batch_size_per_gpu = int(batch_size) if str(batch_size).isdigit() else 1
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if model is None:
            if pretrained is None:
                raise ValueError("model_args needs pretrained=PATH_OR_HUB_ID (a transformers VLM checkpoint).")
            pretrained = resolve_pretrained(str(pretrained))
            load = {"revision": revision, "trust_remote_code": trust_remote_code}
            model = AutoModelForImageTextToText.from_pretrained(
                pretrained, dtype=_dtype(dtype, self._device.type), attn_implementation=attn_implementation, **load
            )
            processor = AutoProcessor.from_pretrained(pretrained, **load)
        elif processor is None:
            raise ValueError("Pass processor= together with model=.")
        family_for(model)  # fail early, with the list of supported families, before any request runs
        self._model = model.to(self._device).eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pretrained = pretrained or getattr(model.config, "_name_or_path", "")
        if self.fastv_config is not None:
            fastv.apply(self._model, self.fastv_config)
        self._run_open = False
        self._elapsed, self._gen_tokens = 0.0, 0

    # --- what lmms-eval reads ------------------------------------------------------------------
    @property
    def model(self) -> torch.nn.Module:
        return self._model

    @property
    def config(self) -> Any:
        return self._model.config

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def setting(self) -> str:
        return describe(self.fastv_config)

    # --- requests ------------------------------------------------------------------------------
    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Greedy (or sampled, per the task's generation_kwargs) answers, batched with left padding."""
        self._begin_run()
        out: list[str | None] = [None] * len(requests)
        for rows, args in self._batches(requests, gen_key=True):
            contexts, gen_kwargs = [a[0] for a in args], dict(args[0][1] or {})
            until = gen_kwargs.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            inputs, _ = self._encode(contexts, args)
            with torch.inference_mode():
                generated = self._model.generate(**inputs, **self._generation_args(gen_kwargs))
            new = generated[:, inputs["input_ids"].shape[1] :]
            self._gen_tokens += int((new != self.tokenizer.pad_token_id).sum())
            texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            for row, text in zip(rows, texts, strict=True):
                out[row] = cut_at_stops(text, until).strip()
        return [text or "" for text in out]

    def loglikelihood(self, requests: list[Instance]) -> list[GenerationResult]:
        """log P(continuation | context, images) and whether greedy decoding would produce it.

        Each (logprob, is_greedy) pair is wrapped in ``GenerationResult``: lmms-eval 0.7.3's
        ``unwrap_generation_output`` turns a bare tuple into its ``str()``, which breaks every
        log-likelihood metric; a ``GenerationResult`` is passed through unchanged.
        """
        self._begin_run()
        out: list[tuple[float, bool] | None] = [None] * len(requests)
        for rows, args in self._batches(requests, gen_key=False):
            contexts = [a[0] for a in args]
            conts = [a[1] if isinstance(a[1], str) else a[1](self._doc(a)) for a in args]
            inputs, prompts = self._encode(contexts, args)
            cont_ids = [self._continuation_ids(p, c) for p, c in zip(prompts, conts, strict=True)]
            forcer = _ForceContinuation(cont_ids, inputs["input_ids"].shape[1], self.tokenizer.pad_token_id)
            with torch.inference_mode():
                result = self._model.generate(
                    **inputs,
                    logits_processor=LogitsProcessorList([forcer]),
                    do_sample=False,
                    num_beams=1,
                    max_new_tokens=max(1, *(len(c) for c in cont_ids)),
                    pad_token_id=self.tokenizer.pad_token_id,
                    output_logits=True,
                    return_dict_in_generate=True,
                )
            for row, pair in zip(rows, _score(result.logits, cont_ids), strict=True):
                out[row] = pair
        return [GenerationResult(text=pair or (float("-inf"), False)) for pair in out]  # type: ignore[arg-type]

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError(
            "fastv's lmms-eval model does not support multi-round tasks yet; use single-turn generate_until "
            "or loglikelihood tasks."
        )

    def clean(self) -> None:
        """End of an evaluation (lmms-eval calls this once, after all requests): log the run's FLOPs.

        The record lands in ``results["throughput"]`` (as ``avg_<key>``; one record per run, so the
        average is the value). The model is kept, so one instance can serve several evaluations.
        """
        if not self._run_open:
            return
        self._run_open = False
        run = ledger.current().across_ranks()
        total = run.total()
        extra: dict[str, Any] = {
            "fastv_flops_pct": total.pct,
            "fastv_eq5_flops_pct": total.eq5_pct,
            "fastv_k": self.fastv_config.k if self.fastv_config else 0,
            "fastv_ratio": (self.fastv_config.ratio if self.fastv_config and self.fastv_config.keep is None else 0.0),
            "fastv_keep": (self.fastv_config.keep if self.fastv_config and self.fastv_config.keep is not None else -1),
            "fastv_image_tokens_per_prompt": total.image_tokens / max(1, total.prompts),
            "fastv_kept_image_tokens_per_prompt": total.kept_image_tokens / max(1, total.prompts),
        }
        for task in run.tasks():
            extra[f"fastv_flops_pct/{task}"] = run.total([task]).pct
        speed = self._gen_tokens / self._elapsed if self._elapsed else 0.0
        log_metrics(self._elapsed, self._gen_tokens, speed, additional_metrics=extra)

    # --- helpers -------------------------------------------------------------------------------
    def _begin_run(self) -> None:
        if not self._run_open:
            ledger.start_run()
            self._run_open, self._elapsed, self._gen_tokens = True, 0.0, 0
            self._t0 = time.perf_counter()
        self._elapsed = time.perf_counter() - self._t0

    def _doc(self, args: Sequence[Any]) -> Any:
        *_, doc_id, task, split = args
        return self.task_dict[task][split][doc_id]

    def _batches(self, requests: list[Instance], gen_key: bool) -> Iterator[tuple[list[int], list[tuple]]]:
        """Requests grouped by (task, split[, generation kwargs]) and cut into batches, order kept."""
        groups: dict[tuple, list[int]] = {}
        for i, req in enumerate(requests):
            args = req.args
            key = (args[-2], args[-1], json.dumps(args[1], sort_keys=True, default=str) if gen_key else "")
            groups.setdefault(key, []).append(i)
        for rows in groups.values():
            for start in range(0, len(rows), self.batch_size):
                chunk = rows[start : start + self.batch_size]
                yield chunk, [requests[i].args for i in chunk]
        self._elapsed = time.perf_counter() - self._t0

    def _images(self, args: Sequence[Any]) -> list[Image.Image]:
        visuals = args[2](self._doc(args)) if args[2] is not None else []
        images = [v for v in (visuals or []) if v is not None]
        for v in images:
            if not isinstance(v, Image.Image):
                raise TypeError(f"fastv's lmms-eval model takes PIL images; the task gave {type(v).__name__}.")
        return [v.convert("RGB") for v in images]

    def _encode(self, contexts: list[str], args: list[tuple]) -> tuple[dict[str, torch.Tensor], list[str]]:
        """Processor inputs for a batch (left padded) and the prompt texts; each prompt's FLOPs go to the ledger."""
        per_request = [self._images(a) for a in args]
        prompts = [
            build_prompt(self.processor, ctx, len(imgs), self.chat_template)
            for ctx, imgs in zip(contexts, per_request, strict=True)
        ]
        images = [img for imgs in per_request for img in imgs]
        inputs = self.processor(text=prompts, images=images or None, padding=True, return_tensors="pt")
        inputs = {key: value.to(self._device) for key, value in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self._model.dtype)
        run = ledger.current()
        layouts = ledger.layouts(self._model, inputs["input_ids"], inputs.get("attention_mask"))
        for layout, a in zip(layouts, args, strict=True):
            run.record(a[-2], a[-3], ledger.count(self._model, layout, self.fastv_config))
        return inputs, prompts

    def _continuation_ids(self, prompt: str, continuation: str) -> list[int]:
        """Continuation token ids as they follow the prompt (tokenised jointly, so merges at the seam count)."""
        tok = self.tokenizer
        whole = tok(prompt + continuation, add_special_tokens=False)["input_ids"]
        head = tok(prompt, add_special_tokens=False)["input_ids"]
        if whole[: len(head)] == head and len(whole) > len(head):
            return whole[len(head) :]
        return tok(continuation, add_special_tokens=False)["input_ids"]

    def _generation_args(self, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
        temperature = float(gen_kwargs.get("temperature", 0) or 0)
        args: dict[str, Any] = {
            "max_new_tokens": int(gen_kwargs.get("max_new_tokens", 128)),
            "num_beams": int(gen_kwargs.get("num_beams", 1) or 1),
            "do_sample": bool(gen_kwargs.get("do_sample", False)) or temperature > 0,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if args["do_sample"]:
            args["temperature"] = temperature or 1.0
            if gen_kwargs.get("top_p") is not None:
                args["top_p"] = float(gen_kwargs["top_p"])
        return args
