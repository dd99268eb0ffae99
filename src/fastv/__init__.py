"""fastv: FastV visual-token pruning for Hugging Face vision-language models.

import fastv
fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.5))
model.generate(**inputs)          # unchanged call, pruned computation
fastv.last_keep(model)            # which prompt positions were kept, per sample
fastv.remove(model)               # back to the exact original model
"""

from fastv.analysis import analyze, analyze_many
from fastv.config import FastVConfig
from fastv.errors import FastVError, UnsupportedModelError
from fastv.families import supported_families
from fastv.measure import flops
from fastv.patch import apply, get_config, is_applied, last_keep, remove


def doctor(*args, **kwargs):
    """Check that FastV is exact on this torch / transformers / device; see ``fastv.selfcheck.doctor``.

    Imported on call: the self-check builds tiny models of every family, which plain use never needs.
    """
    from fastv.selfcheck import doctor as run

    return run(*args, **kwargs)


__all__ = [
    "FastVConfig",
    "FastVError",
    "UnsupportedModelError",
    "analyze",
    "analyze_many",
    "apply",
    "doctor",
    "flops",
    "get_config",
    "is_applied",
    "last_keep",
    "remove",
    "supported_families",
]
__version__ = "0.2.0"
