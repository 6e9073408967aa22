"""Runs that share an `--output_path`: every run gets an id, keeps its own manifest, and
is told when another live run writes into the same folder.

- The run id (UTC start time + process id of rank 0) is the same on every process of a
  run: rank 0 makes it and hands it over through the process group's store.
- The first run in a folder writes `lvu_ext_run.json`; a later one, finding it taken by
  another run, writes `lvu_ext_run_<run id>.json`, so no run's records point at a manifest
  that another run replaced. Every per-request record carries `run_id`, so the records of
  a killed run and of its resume, appended to the same `lvu_ext_requests.jsonl`, are told
  apart.
- Rank 0 holds an advisory lock on `<output_path>/lvu_ext_run.lock` for the whole run; a
  run that finds it held warns that lmms-eval's own files may collide (see README).
"""

from __future__ import annotations

import datetime
import json
import os

LOCK_NAME = "lvu_ext_run.lock"
_held: list = []  # lock files kept open (so locked) for the life of the process


def run_identity(manifest_path: str | None, rank: int, world_size: int) -> tuple[str, str | None]:
    """(run id, manifest file) of this run, the same on every process: rank 0 makes the id
    and claims the file, and hands both over through the process group's store."""
    if rank == 0:
        run_id = _make_id()
        identity = (run_id, claim_manifest(manifest_path, run_id))
    if world_size > 1:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            store = dist.distributed_c10d._get_default_store()  # no public accessor; see engine/node.py
            if rank == 0:
                store.set("lvu_ext_run_identity", json.dumps(identity))
            return tuple(json.loads(store.get("lvu_ext_run_identity").decode()))
    if rank != 0:  # several processes without a process group: each on its own
        run_id = _make_id()
        identity = (run_id, f"{os.path.splitext(manifest_path)[0]}_{run_id}.json" if manifest_path else None)
    return identity


def _make_id() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"


def claim_manifest(path: str | None, run_id: str) -> str | None:
    """`path` when no other run has it (created empty-but-for the run id, atomically), else
    the per-run name beside it."""
    if not path:
        return None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return path if _run_of(path) == run_id else f"{os.path.splitext(path)[0]}_{run_id}.json"
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"run_id": run_id}, fh)  # a placeholder, replaced whole by the manifest itself
    return path


def _run_of(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None


def hold_folder(folder: str | None) -> str | None:
    """Lock `folder` for this run; returns a warning when another live run holds it."""
    if not folder:
        return None
    import fcntl

    os.makedirs(folder, exist_ok=True)
    fh = open(os.path.join(folder, LOCK_NAME), "a+", encoding="utf-8")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        return (f"lvu_ext: another live run ({holder}) is writing into {folder}. This run keeps its own manifest "
                f"(lvu_ext_run_<run id>.json) and tags its records with its run_id, but lmms-eval names its results file "
                f"<model>/<date>_results.json and its samples files <date>_samples_<task>.jsonl to the second: two runs "
                f"that finish within the same second overwrite each other's, and its --use_cache files are shared. "
                f"Give each run its own --output_path.")
    fh.seek(0)
    fh.truncate()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    fh.write(f"pid {os.getpid()} on {os.uname().nodename}, started {started}\n")
    fh.flush()
    _held.append(fh)
    return None
