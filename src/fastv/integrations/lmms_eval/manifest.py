"""The ``lmms_eval.models`` entry point: ``fastv = "fastv.integrations.lmms_eval.manifest:MANIFEST"``.

Only the class path is named here, so lmms-eval imports torch/transformers for this model only
when it is actually requested.
"""

from lmms_eval.models.registry_v2 import ModelManifest

MANIFEST = ModelManifest(model_id="fastv", simple_class_path="fastv.integrations.lmms_eval.model.FastVModel")
