"""Run manifest: `lvu_ext_run.json` beside the results, saying what produced them.

lmms-eval's results JSON records `lmms_eval_version` as the git branch@commit of the
working directory (`unknown@unknown` for a pip install) and nothing about the
checkpoint's revision or the task files, so two results files cannot be told apart when
the harness, the weights or a task YAML changed. The manifest records the installed
versions (importlib.metadata), the checkpoint id and the commit it resolved to, dtype /
device / attention, every model arg, and per task its frame plan and YAML hash.

It is written by rank 0 into the `--output_path` folder (else beside `record_path`) when
the model is built, and rewritten when requests name tasks it has not seen; every
per-request record carries its path (`run_manifest`) and the run's id (`run_id`). A folder
whose `lvu_ext_run.json` belongs to another run gets `lvu_ext_run_<run id>.json` instead
(run_folder.py). `model_args_string` is the
`--model_args` text exactly as lmms-eval records it in `config.model_args`, which is how
`lvu-ext report` ties a results file to its manifest.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys

from lmms_eval_plugin.argv import flag_value
from lmms_eval_plugin.bookkeeping.run_folder import hold_folder, run_identity

MANIFEST_NAME = "lvu_ext_run.json"
SCHEMA = 1
PACKAGES = ("lmms-eval", "transformers", "torch", "accelerate", "lvu_ext")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def manifest_path(argv: list[str], record_path: str | None) -> str | None:
    """`<--output_path>/lvu_ext_run.json`, else beside an explicit `record_path`, else None
    (no results folder to sit beside, e.g. lvu_ext used from Python)."""
    out = flag_value(argv, "--output_path")
    if out:
        return os.path.join(os.path.abspath(out), MANIFEST_NAME)
    if record_path:
        return os.path.join(os.path.dirname(os.path.abspath(record_path)), MANIFEST_NAME)
    return None


# ---- checkpoint ---------------------------------------------------------------------
def checkpoint_revision(pretrained: str, local_path: str, revision: str) -> tuple[str | None, str]:
    """(commit hash or None, where it came from). A hub id resolves through the hub cache
    that from_pretrained just used (snapshots/<commit>/); a local folder gives one when it
    is such a snapshot folder or the root of a git clone."""
    if _COMMIT.match(revision or ""):
        return revision, "revision model arg"
    snapshot = re.search(r"snapshots/([0-9a-f]{40})(/|$)", os.path.realpath(local_path).replace(os.sep, "/") + "/")
    if os.path.isdir(local_path):
        if snapshot:
            return snapshot.group(1), "hub snapshot folder"
        if os.path.exists(os.path.join(local_path, ".git")):
            try:
                out = subprocess.run(["git", "-C", local_path, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
            except (OSError, subprocess.SubprocessError):
                out = None
            if out is not None and out.returncode == 0 and _COMMIT.match(out.stdout.strip()):
                return out.stdout.strip(), "git clone"
        return None, "local folder without a hub snapshot or git commit"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(pretrained, "config.json", revision=revision or None)
    except Exception:  # an id the hub client rejects: no cache entry to read
        cached = None
    if isinstance(cached, str):
        found = re.search(r"snapshots/([0-9a-f]{40})/", cached.replace(os.sep, "/"))
        if found:
            return found.group(1), "hub cache"
    return None, "not found in the hub cache"


# ---- tasks ------------------------------------------------------------------------------
def harness_task_manager():
    """The TaskManager the lmms-eval CLI built (a local of `simple_evaluate`, which is on the
    call stack while requests are answered); building a new one would index ~2000 YAMLs."""
    try:
        from lmms_eval.tasks import TaskManager
    except ImportError:
        return None
    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("task_manager")
        if isinstance(candidate, TaskManager):
            return candidate
        frame = frame.f_back
    return None


def _sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _includes(path: str) -> list[str]:
    """Files named by `include:` (recursively), resolved the way lmms-eval's
    load_yaml_config resolves them (as given, else next to the including file)."""
    import yaml

    class TagsIgnored(yaml.SafeLoader):  # `!function` and other tags: values do not matter here
        pass

    TagsIgnored.add_multi_constructor("!", lambda loader, suffix, node: None)
    with open(path, encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=TagsIgnored) or {}
    names = data.get("include") if isinstance(data, dict) else None
    out = []
    for name in [names] if isinstance(names, str) else names or []:
        target = name if os.path.isfile(name) else os.path.join(os.path.dirname(path), name)
        if os.path.isfile(target):
            out += [os.path.abspath(target)] + _includes(target)
    return out


def yaml_record(yaml_path) -> dict:
    """Path and sha256 of a task's YAML and of every file it includes."""
    if not isinstance(yaml_path, str) or not os.path.isfile(yaml_path):
        return {"yaml": None, "yaml_sha256": None}
    record = {"yaml": os.path.abspath(yaml_path), "yaml_sha256": _sha256(yaml_path)}
    try:
        record["yaml_includes"] = [{"path": p, "sha256": _sha256(p)} for p in _includes(yaml_path)]
    except Exception as exc:  # an unreadable include: the task's own hash still stands
        record["yaml_includes_error"] = f"{type(exc).__name__}: {exc}"
    return record


def request_frame_plan(request, lvu_args) -> str:
    """The frame plan lvu_ext uses for this request (task metadata, `--gen_kwargs`, model args)."""
    from lmms_eval_plugin.engine.request_plan import FRAME_KEYS, frame_plan_for

    gen_kwargs = request.args[1] if request.request_type.startswith("generate") and isinstance(request.args[1], dict) else {}
    return frame_plan_for(request, {k: gen_kwargs[k] for k in FRAME_KEYS if k in gen_kwargs}, lvu_args).describe()


# ---- the manifest ---------------------------------------------------------------------------
class RunManifest:
    def __init__(self, path: str | None, base: dict, write: bool):
        self.path = path
        self.data = {"schema": SCHEMA, **base, "tasks": {}}
        self._write = bool(path) and write  # rank 0 only: one file per run
        self.save()

    def add_tasks(self, requests, lvu_args) -> None:
        """Each task seen for the first time: its frame plan (from its first request) and its
        YAML, looked up in the harness's TaskManager."""
        try:
            self._add_tasks(requests, lvu_args)
        except Exception as exc:  # the manifest must never cost the run its answers
            from loguru import logger

            logger.warning(f"lvu_ext: could not add tasks to {self.path}: {type(exc).__name__}: {exc}")

    def _add_tasks(self, requests, lvu_args) -> None:
        new = {}
        for request in requests:
            task = request.args[4]
            if task not in self.data["tasks"] and task not in new:
                new[task] = {"name": task, "request_type": request.request_type, "frame_plan": request_frame_plan(request, lvu_args)}
        if not new:
            return
        manager = harness_task_manager()
        for task, entry in new.items():
            info = manager.task_index.get(task, {}) if manager is not None else {}
            entry.update(yaml_record(info.get("yaml_path")))
            if manager is None:
                entry["yaml_note"] = "not run by the lmms-eval CLI: no TaskManager to find the YAML"
            self.data["tasks"][task] = entry
        self.save()

    def save(self) -> None:
        if not self._write:
            return
        self.data["written_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = f"{self.path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.data, fh, indent=2, default=str)
        os.replace(tmp, self.path)  # never a half-written manifest


def open_manifest(lvu_args, argv: list[str], pretrained_path: str, model, device, rank: int, world_size: int, recorder) -> RunManifest:
    """Write this run's manifest (rank 0) and point the per-request records at it."""
    from dataclasses import asdict

    path = manifest_path(argv, lvu_args.record_path)
    if rank == 0 and path:  # before the manifest is claimed: a live run there already has lvu_ext_run.json
        busy = hold_folder(os.path.dirname(path))
        if busy:
            from loguru import logger

            logger.warning(busy)
    run_id, path = run_identity(path, rank, world_size)
    base = {"run_id": run_id, **base_record(asdict(lvu_args), argv, pretrained_path, model, device, world_size)}
    manifest = RunManifest(path, base, write=rank == 0)
    recorder.run_manifest, recorder.run_id = path, run_id
    return manifest


def base_record(args: dict, argv: list[str], pretrained_path: str, model, device, world_size: int) -> dict:
    revision, source = checkpoint_revision(args["pretrained"], pretrained_path, args.get("revision") or "main")
    return {
        "versions": package_versions(),
        "checkpoint": {
            "id": args["pretrained"],
            "path": os.path.abspath(pretrained_path) if os.path.isdir(pretrained_path) else None,
            "requested_revision": args.get("revision"),
            "revision": revision,
            "revision_source": source,
        },
        "dtype": str(model.dtype).replace("torch.", ""),
        "device": str(device),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "processes": world_size,
        "model_args": args,
        "model_args_string": flag_value(argv, "--model_args"),
    }
