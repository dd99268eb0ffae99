"""The study over a set of samples: inputs (a folder of images with one prompt, or a JSONL), the loop, the mean.

Samples are weighted equally: the mean allocation is the mean of each sample's per-layer allocation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from fastv.analysis.study import CLASSES, SampleAnalysis, analyze

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass(frozen=True)
class StudySample:
    """One prompt over one or more images (paths, opened lazily)."""

    images: tuple[Path, ...]
    prompt: str
    id: str = ""

    def load_images(self) -> list[Image.Image]:
        out = []
        for path in self.images:
            with Image.open(path) as im:
                out.append(im.convert("RGB"))
        return out


def with_placeholders(processor: Any, prompt: str, n_images: int) -> str:
    """``prompt`` with image placeholders prepended when it names fewer than ``n_images`` (none: left as is,
    the loader adds them or applies the chat template)."""
    token = getattr(processor, "image_token", "<image>")
    count = prompt.count(token)
    if 0 < count < n_images:
        return " ".join([token] * (n_images - count) + [prompt])
    return prompt


def samples_from_folder(folder: str | Path, prompt: str, limit: int | None = None) -> list[StudySample]:
    """Every image in ``folder`` (sorted by name) with the same ``prompt``."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {folder}.")
    return [StudySample((p,), prompt, p.stem) for p in paths[:limit]]


def samples_from_jsonl(path: str | Path, limit: int | None = None) -> list[StudySample]:
    """Records ``{"image": path or [paths], "prompt": text, "id"?: ...}``; relative paths from the file's folder.

    A VQA dataset's records (``"question"`` instead of ``"prompt"``, as ``fastv eval`` reads) work too.
    """
    path = Path(path)
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            images, prompt = rec["image"], rec["prompt"] if "prompt" in rec else rec["question"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(
                f"{path}:{lineno}: expected a JSON object with 'image' and 'prompt' (or 'question') ({e})."
            ) from e
        images = [images] if isinstance(images, str) else list(images)
        resolved = tuple(Path(i) if Path(i).is_absolute() else path.parent / i for i in images)
        out.append(StudySample(resolved, str(prompt), str(rec.get("id", lineno))))
    return out[:limit]


def samples_from(image: str | None, prompt: str | None, limit: int | None = None) -> list[StudySample]:
    """``image`` is a file, a folder of images (with ``prompt``) or a ``.jsonl`` of {image, prompt}."""
    if image is None:
        raise ValueError("Give --image FILE, a folder of images, or a .jsonl of {image, prompt} records.")
    path = Path(image)
    if path.suffix == ".jsonl":
        return samples_from_jsonl(path, limit)
    if prompt is None:
        raise ValueError("--prompt is needed with an image file or a folder.")
    if path.is_dir():
        return samples_from_folder(path, prompt, limit)
    if not path.is_file():
        raise ValueError(f"{image} is neither an image file, a folder nor a .jsonl file.")
    return [StudySample((path,), prompt, path.stem)]


@dataclass
class StudyReport:
    """Per-sample analyses plus their mean; ``to_dict`` is the JSON the CLI writes."""

    samples: list[SampleAnalysis]
    settings: dict[str, Any] = field(default_factory=dict)

    def _stack(self, name: str) -> torch.Tensor:
        return torch.stack([getattr(s, name) for s in self.samples])

    @property
    def allocation(self) -> torch.Tensor:
        return self._stack("allocation").mean(dim=0)

    @property
    def allocation_std(self) -> torch.Tensor:
        stacked = self._stack("allocation")
        return stacked.std(dim=0) if len(self.samples) > 1 else torch.zeros_like(stacked[0])

    @property
    def efficiency(self) -> torch.Tensor:
        return self._stack("efficiency").nanmean(dim=0)

    def to_dict(self, with_shares: bool = True) -> dict[str, Any]:
        from fastv.analysis import study

        from_study = study.__doc__.split("\n\n", 1)[1].strip()
        return {
            "definition": from_study,
            "classes": list(CLASSES),
            "settings": self.settings,
            "n_samples": len(self.samples),
            "mean": {
                "allocation": _rows(self.allocation),
                "allocation_std": _rows(self.allocation_std),
                "efficiency": _rows(self.efficiency),
                "token_counts": dict(zip(CLASSES, self._stack("counts").mean(dim=0).tolist(), strict=True)),
            },
            "samples": [s.to_dict(with_shares) for s in self.samples],
        }

    def summary(self, layers: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Per layer: mean allocation and efficiency by class (for tables and the README)."""
        alloc, eff = self.allocation, self.efficiency
        layers = range(alloc.shape[0]) if layers is None else layers
        return [
            {
                "layer": layer,
                **{f"alloc_{c}": float(alloc[layer, i]) for i, c in enumerate(CLASSES)},
                **{f"eff_{c}": float(eff[layer, i]) for i, c in enumerate(CLASSES)},
            }
            for layer in layers
        ]


def _rows(t: torch.Tensor) -> list[dict[str, float | None]]:
    return [{c: (None if torch.isnan(v) else float(v)) for c, v in zip(CLASSES, row, strict=True)} for row in t]


def analyze_many(
    model: torch.nn.Module,
    processor: Any,
    samples: Iterable[StudySample],
    build_inputs: Callable[[Any, list[Image.Image], str], dict],
    progress: bool = True,
    map_samples: int = 1,
    **kwargs: Any,
) -> StudyReport:
    """Run :func:`analyze` on every sample (with a rich progress bar); maps only for the first ``map_samples``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    samples = list(samples)
    map_layers = kwargs.pop("map_layers", ())
    tokenizer = getattr(processor, "tokenizer", processor)
    results = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("attention study", total=len(samples))
        for n, sample in enumerate(samples):
            images = sample.load_images()
            inputs = build_inputs(processor, images, with_placeholders(processor, sample.prompt, len(images)))
            layers = map_layers if n < map_samples else ()
            result = analyze(model, inputs, map_layers=layers, tokenizer=tokenizer, **kwargs)
            result.meta = {"id": sample.id, "images": [str(p) for p in sample.images], "prompt": sample.prompt}
            results.append(result)
            bar.advance(task)
    return StudyReport(results, {"map_layers": list(map_layers), **kwargs})
