"""lmms-eval plugin: ``lmms-eval --model fastv --model_args pretrained=PATH,k=2,ratio=0.5``.

Registered through the ``lmms_eval.models`` entry point (``fastv[lmms]``). Modules that need
lmms-eval import it themselves, so ``options``, ``ledger`` and ``make_task`` work without it.
"""
