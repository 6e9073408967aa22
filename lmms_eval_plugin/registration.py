"""Entry point payload for lmms-eval's model registry (group `lmms_eval.models`)."""

from lmms_eval.models.registry_v2 import ModelManifest

MANIFEST = ModelManifest(
    model_id="lvu_ext",
    simple_class_path="lmms_eval_plugin.models.lvu_ext.LvuExt",
)
