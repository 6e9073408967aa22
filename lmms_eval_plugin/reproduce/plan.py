"""What a table needs before it runs: documents, videos and frames per row (read from the
task's own dataset annotations, never its videos), and the time it will take, from rows
already timed in the output folder, or stated as unknown."""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from lmms_eval_plugin.reproduce.tables import Row, Table

log = logging.getLogger("lvu_ext.reproduce")

# dataset_kwargs keys that lmms-eval consumes itself (api/task.py download) rather than
# passing to datasets.load_dataset
_HARNESS_KEYS = {"video", "cache_dir", "force_download", "force_unzip", "local_files_only", "create_link", "builder_script",
                 "From_YouTube", "load_from_disk", "max_retries", "num_proc", "token"}


@dataclass
class RowNeeds:
    docs: int | None
    videos: int | None
    frames_per_doc: int | None  # the cap for rate-based sampling
    rate_based: bool
    why_unknown: str = ""
    sampled: int | None = None  # frames the plan really samples on these videos (a short clip gives all it has)
    why_unsampled: str = ""  # why `sampled` is unknown

    @property
    def frames(self) -> int | None:
        return None if self.docs is None or self.frames_per_doc is None else self.docs * self.frames_per_doc


@functools.lru_cache(maxsize=4)
def _task_index(include_path: str) -> dict:
    from lmms_eval.tasks import TaskManager
    from loguru import logger

    logger.disable("lmms_eval")  # indexing logs a DEBUG line for every template it skips
    try:
        return TaskManager(include_path=include_path).task_index
    finally:
        logger.enable("lmms_eval")


def task_config(task: str, include_path: str) -> dict:
    from lmms_eval.utils import load_yaml_config

    index = _task_index(include_path)
    if task not in index:
        raise KeyError(f"task {task!r} is not in lmms-eval's index with --include_path {include_path}")
    return load_yaml_config(index[task]["yaml_path"], mode="full")


def _frames_of(config: dict) -> tuple[int | None, bool]:
    meta = config.get("metadata") or {}
    if "lvu_num_frames" in meta:
        return int(meta["lvu_num_frames"]), False
    if "lvu_max_frames" in meta:
        return int(meta["lvu_max_frames"]), True
    return None, False


def _frame_plan(config: dict):
    from lmms_eval_plugin.engine.frames import FramePlan

    meta = config.get("metadata") or {}
    if "lvu_num_frames" in meta:
        return FramePlan(num_frames=int(meta["lvu_num_frames"]))
    if "lvu_fps" in meta:
        return FramePlan(num_frames=None, fps=float(meta["lvu_fps"]), max_frames=meta.get("lvu_max_frames"))
    return None


def sampled_on(plan, header: tuple[int, float]) -> int:
    """Frames lvu_ext samples from a video of `header` = (frames, fps): its own indices."""
    from lmms_eval_plugin.engine.frames import plan_indices

    return len(plan_indices(plan, *header)[0])


@functools.lru_cache(maxsize=4096)
def video_header(path: str) -> tuple[int, float] | None:
    """(frames, fps) from the container's header, without decoding; None when unreadable."""
    from lmms_eval_plugin.check_videos.probe import probe

    info = probe(path)
    fps = info.get("stated_fps")
    frames = info.get("listed_frames") or (round(info["duration_s"] * fps) if info.get("duration_s") and fps else None)
    return (int(frames), float(fps)) if frames and fps else None


def _limited(n: int, limit: str | None) -> int:
    # lmms-eval's get_sample_size: a fraction below 1 is a share, else a count
    if limit is None:
        return n
    value = float(limit)
    return int(math.ceil(n * value)) if 0 < value < 1 else min(n, int(value))


def row_needs(row: Row, table: Table, include_path: str, limit: str | None, cache: dict) -> RowNeeds:
    if row.task not in cache:
        cache[row.task] = _count(row.task, table.video_fields.get(row.benchmark), include_path)
    config, docs, videos, why, headers = cache[row.task]
    frames, rate = _frames_of(config) if config else (None, False)
    if docs is None:
        return RowNeeds(None, None, frames, rate, why, why_unsampled=why)
    n = _limited(docs, limit)
    plan = _frame_plan(config)
    sampled, why_unsampled = None, ""
    if plan is None:
        why_unsampled = "the task names no lvu_ext frame plan"
    elif isinstance(headers, str):
        why_unsampled = headers
    else:
        known = headers[:n]
        if any(h is None for h in known):
            why_unsampled = f"{sum(h is None for h in known)} of {n} question(s)' videos could not be read here"
        else:
            sampled = sum(sampled_on(plan, h) for h in known)
    # under --limit the videos are those of the first n documents
    return RowNeeds(n, videos(n) if videos else None, frames, rate, sampled=sampled, why_unsampled=why_unsampled)


def _count(task: str, video_field: str | None, include_path: str):
    try:
        config = task_config(task, include_path)
    except Exception as exc:  # an index that does not hold it: said, not fatal before a dry run
        return None, None, None, f"{type(exc).__name__}: {exc}", ""
    try:
        import datasets

        kwargs = {k: v for k, v in (config.get("dataset_kwargs") or {}).items() if k not in _HARNESS_KEYS}
        data = datasets.load_dataset(config["dataset_path"], config.get("dataset_name"), split=config["test_split"], **kwargs)
        if config.get("process_docs") is not None:
            data = config["process_docs"](data)
        keys = list(data[video_field]) if video_field and video_field in data.column_names else None
    except Exception as exc:  # offline, gated, not downloaded: the counts are unknown, the run may still work
        log.info("could not count the documents of %s: %s", task, exc)
        return config, None, None, f"its annotations could not be loaded here ({type(exc).__name__})", ""
    videos = (lambda n: len(set(keys[:n]))) if keys is not None else None
    return config, len(data), videos, "", _headers(config, data, keys)


def _headers(config: dict, data, keys) -> list | str:
    """Per document, its video's (frames, fps) from the header, or why they are unknown."""
    to_visual = config.get("doc_to_visual")
    if not callable(to_visual):
        return "the task's doc_to_visual is not a function"
    by_key: dict = {}
    headers = []
    for i, doc in enumerate(data):
        key = keys[i] if keys is not None else i
        if key not in by_key:
            try:
                paths = to_visual(doc)
            except (Exception, SystemExit) as exc:  # Video-MME's utils sys.exit() on a missing video
                return f"its videos are not here ({type(exc).__name__}: {str(exc)[:200]})"
            path = paths[0] if isinstance(paths, (list, tuple)) and len(paths) == 1 and isinstance(paths[0], str) else None
            by_key[key] = video_header(path) if path else None
        headers.append(by_key[key])
    return headers


def timed_rows(table: Table, row_dir_of) -> list[dict]:
    """The `row.json` timing of rows already finished in the output folder."""
    timed = []
    for row in table.runnable:
        path = Path(row_dir_of(row)) / "row.json"
        if path.is_file():
            info = json.loads(path.read_text(encoding="utf-8"))
            if info.get("returncode") == 0 and info.get("wall_s") and info.get("frames"):
                timed.append(info)
    return timed


def estimate_hours(pending_frames: list[int | None], timed: list[dict], processes: int, why_unknown: str = "") -> str:
    """Hours for the pending rows at the timed rows' seconds per sampled frame (frames
    dominate the cost of a video LMM request), or why there is no estimate."""
    if not pending_frames:
        return "nothing left to run"
    if not timed:
        return "unknown: no row of this table has been timed in this folder yet (an estimate is logged after each row)"
    if any(f is None for f in pending_frames):
        return f"unknown: the frames some rows will sample are unknown{f' ({why_unknown})' if why_unknown else ''}"
    per_frame = sum(t["wall_s"] for t in timed) / sum(t["frames"] for t in timed)
    hours = per_frame * sum(pending_frames) / 3600
    return (f"about {_duration(hours)} on this node ({_duration(hours * processes)} of device time at {processes} process(es)), "
            f"from {len(timed)} timed row(s)")


def _duration(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min" if hours >= 1 / 60 else f"{hours * 3600:.0f} s"
