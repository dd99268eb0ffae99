"""Refusals instead of silent wrong results: paths on which the hooks would not run, and family adapters
that rebuild keys differently from the model."""

from __future__ import annotations

import sys

import torch
from torch import nn

from fastv.errors import FastVError
from fastv.families.base import Family

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


def reject_compiled_hooked(model: nn.Module, hooked: list[nn.Module]) -> None:
    """Refuse when a module FastV hooks, or one whose forward runs it (its ancestors), is already compiled.

    A graph compiled before ``apply`` inlines the forwards inside it without the hooks added later, so
    FastV would silently not prune (compiling the decoder, a decoder layer or the ranking layer's attention).
    Checked: ``module.compile()``, a ``torch.compile(module)`` wrapper set as a submodule, and a forward
    (the instance's or its class's) replaced by ``torch.compile(forward)``.
    """
    names = {id(module): name for name, module in model.named_modules()}
    seen: set[str] = set()
    for module in hooked:
        name = names.get(id(module))
        paths = [name] if name is None else [".".join(name.split(".")[:n]) for n in range(name.count(".") + 2)]
        for path in paths:
            if path in seen:
                continue
            seen.add(path)
            part = module if path is None else model.get_submodule(path)
            how = _compiled_form(part)
            if how is not None:
                where = f"{type(model).__name__}.{path}" if path else type(model).__name__
                raise FastVError(
                    f"{where} ({type(part).__name__}) is already compiled ({how}); FastV hooks it or a module "
                    f"inside it, and a graph compiled before fastv.apply ignores hooks added later, so FastV would "
                    f"silently not prune. Load the model afresh (or undo the compile). {_COMPILE_ORDER} Compiling a "
                    "submodule after fastv.apply works too."
                )


def _compiled_form(module: nn.Module) -> str | None:
    """How ``module`` was compiled, in words, or None."""
    if hasattr(module, "_orig_mod"):
        return "a torch.compile(module) wrapper set in place of the module; put back its ._orig_mod"
    if getattr(module, "_compiled_call_impl", None) is not None:
        return "module.compile()"
    if hasattr(module.__dict__.get("forward"), "_torchdynamo_orig_callable"):
        return "module.forward = torch.compile(...); del module.forward undoes it"
    if hasattr(type(module).forward, "_torchdynamo_orig_callable"):
        return f"{type(module).__name__}.forward replaced by torch.compile(...) for the whole class"
    return None


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


def check_adapter_keys(
    family: Family, attention: nn.Module, layer_idx: int, rebuilt: torch.Tensor, cached: torch.Tensor
) -> None:
    """Refuse a family adapter that projects, normalises or rotates keys differently from the model.

    Its queries and keys decide the ranking; wrong ones give a silently wrong kept set. The keys the
    layer wrote to its cache are the ground truth (queries have none), compared within rounding of
    the model's dtype.
    """
    relative = 1e-4 if cached.dtype == torch.float32 else 16 * torch.finfo(cached.dtype).eps
    rebuilt, cached = rebuilt.detach().float(), cached.detach().float()
    tolerance = relative * (float(cached.abs().max()) or 1.0)
    diff = float((rebuilt - cached).abs().max()) if rebuilt.shape == cached.shape else float("inf")
    if diff > tolerance:
        raise FastVError(
            f"FastV's {family.name!r} adapter rebuilds layer {layer_idx}'s keys differently from the keys "
            f"{type(attention).__name__} cached (max abs diff {diff:.3g}, shapes {tuple(rebuilt.shape)} vs "
            f"{tuple(cached.shape)}): its ranking would be silently wrong. This model's attention differs from "
            f"what the adapter knows (norms, rotary, projections); it is not supported until the adapter is fixed."
        )
