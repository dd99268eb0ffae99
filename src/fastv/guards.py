"""Paths on which FastV's hooks would not run: refuse them with an error instead of a silent unpruned result."""

from __future__ import annotations

import sys

from torch import nn

from fastv.errors import FastVError

_COMPILE_ORDER = (
    "Apply FastV first, then compile: fastv.apply(model, config); model = torch.compile(model) (or model.compile())."
)


def reject_compiled(model: nn.Module) -> None:
    """torch.compile does not guard on module hooks, so a graph compiled before ``apply`` runs unpruned."""
    if hasattr(model, "_orig_mod"):
        raise FastVError(
            f"fastv.apply got a torch.compile wrapper of {type(model._orig_mod).__name__}: hooks on it would be "
            f"bypassed by the compiled graph. Pass the uncompiled model. {_COMPILE_ORDER}"
        )
    if getattr(model, "_compiled_call_impl", None) is not None or _has_compiled_graphs(type(model).forward):
        raise FastVError(
            f"{type(model).__name__}.forward has already been compiled with torch.compile in this process; its "
            "graphs ignore hooks added later, so FastV would silently not prune. Call torch._dynamo.reset() (and "
            f"drop the compiled module), or load the model afresh. {_COMPILE_ORDER}"
        )


def _has_compiled_graphs(function) -> bool:
    try:
        from torch._C._dynamo.eval_frame import _debug_get_cache_entry_list
    except ImportError:  # a torch without this introspection: nothing to check
        return False
    code = getattr(function, "__code__", None)
    return code is not None and len(_debug_get_cache_entry_list(code)) > 0


def inside_forward_of(model: nn.Module) -> bool:
    """Whether ``model.forward`` is running on the current call stack (so its pre-hook has just run)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "forward" and frame.f_locals.get("self") is model:
            return True
        frame = frame.f_back
    return False
