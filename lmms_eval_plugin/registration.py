"""Entry point payload for lmms-eval's model registry (group `lmms_eval.models`).

MANIFEST is built on first access, not at import: importing lmms_eval.models.registry_v2
runs lmms_eval.models' __init__, which loads every entry point, this one included. Built at
import, a process whose first import was this module lost `lvu_ext` (lmms-eval found this
module half-initialised, with no MANIFEST yet, and only logged a warning).
"""

from __future__ import annotations


def __getattr__(name: str):
    if name != "MANIFEST":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from lmms_eval.models.registry_v2 import ModelManifest

    manifest = ModelManifest(model_id="lvu_ext", simple_class_path="lmms_eval_plugin.models.lvu_ext.LvuExt")
    globals()["MANIFEST"] = manifest
    return manifest
