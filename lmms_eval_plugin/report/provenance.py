"""Which harness version and which checkpoint revision produced a results file, and the
model args a run really used.

lvu_ext runs: from the run's `lvu_ext_run.json` (run_manifest.py), found in the results
file's folder or the folders above it, and used only when its `model_args_string` is the
results file's `config.model_args` (a later run into the same folder rewrites it).
Other runs: the results JSON's own `lmms_eval_version`, which lmms-eval fills with the git
branch@commit of the folder it ran in ("unknown@unknown" outside a git checkout), so it is
shown as `git:<branch>@<commit>`; the revision only when `revision=` pins a commit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from lmms_eval_plugin.bookkeeping.run_manifest import MANIFEST_NAME

UNKNOWN = "unknown"
_HEX = re.compile(r"^[0-9a-f]{7,40}$")
_PARENTS_SEARCHED = 3  # <output_path>/<model>/<date>_results.json, plus one level of nesting


@dataclass
class Provenance:
    harness: str = UNKNOWN  # lmms-eval version, e.g. "0.7.3" or "git:main@1a2b3c4d"
    revision: str = UNKNOWN  # checkpoint commit
    effective_args: dict[str, str] = field(default_factory=dict)  # all model args, defaults included where known
    manifest: str | None = None
    notes: list[str] = field(default_factory=list)


def find_manifest(results_path: Path, model_args: str | None = None) -> Path | None:
    """The run manifest of a results file: `lvu_ext_run.json`, or a `lvu_ext_run_<run id>.json`
    of a later run into the same folder. With `model_args`, the newest manifest of a run with
    those args written no later than the results file; else the first found."""
    folder = results_path.parent
    written = results_path.stat().st_mtime if results_path.exists() else float("inf")
    for _ in range(_PARENTS_SEARCHED):
        candidates = [p for p in [folder / MANIFEST_NAME, *folder.glob(MANIFEST_NAME[:-5] + "_*.json")] if p.is_file()]
        if candidates:
            if model_args is None:
                return candidates[0]
            matching = [p for p in candidates if (_load(p) or {}).get("model_args_string") == model_args]
            before = [p for p in matching if p.stat().st_mtime <= written + 1]
            return max(before or matching, key=lambda p: p.stat().st_mtime) if matching else candidates[0]
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


def _load(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _harness_from_results(data: dict) -> str:
    value = str(data.get("lmms_eval_version") or "")
    if not value or value.startswith("unknown@unknown"):
        return UNKNOWN
    return f"git:{value}"


def _lvu_defaults() -> dict[str, str]:
    from dataclasses import asdict

    from lmms_eval_plugin.model_args import LvuArgs

    return {k: str(v) for k, v in asdict(LvuArgs()).items()}


def provenance(data: dict, results_path: Path, model: str, args: dict[str, str]) -> Provenance:
    config = data.get("config") or {}
    prov = Provenance(harness=_harness_from_results(data), effective_args=dict(args))
    if _HEX.match(args.get("revision", "")):
        prov.revision = args["revision"]
    if model != "lvu_ext":
        return prov
    prov.effective_args = {**_lvu_defaults(), **args}
    path = find_manifest(results_path, config.get("model_args"))
    manifest = _load(path) if path else None
    if manifest is None:
        prov.notes.append(f"no {MANIFEST_NAME}: harness version from the results JSON, model arg defaults of the installed lvu_ext")
        return prov
    if manifest.get("model_args_string") != config.get("model_args"):
        prov.notes.append(f"{path} belongs to another run (its model_args differ): not used")
        return prov
    prov.manifest = str(path)
    prov.harness = (manifest.get("versions") or {}).get("lmms-eval") or prov.harness
    prov.revision = (manifest.get("checkpoint") or {}).get("revision") or prov.revision
    prov.effective_args = {k: str(v) for k, v in (manifest.get("model_args") or {}).items()}
    return prov
