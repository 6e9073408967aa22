"""The videos a run would open, found the way the run finds them: lmms-eval's TaskManager
with the same --include_path resolves --tasks (names, groups, wildcards, YAML files), each
task's eval split is its test split (else validation), and each document's video is the
task's own `doc_to_visual` on it (through the model's `video_path`, which also says why a
document has no usable path). The frame plan is the model's (engine/request_plan.py): a
`num_frames`/`fps`/`max_frames` generation kwarg, else the task's `lvu_*` metadata, else
the model-arg defaults given here."""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from types import SimpleNamespace

from lmms_eval_plugin.engine.request_plan import FramePlanError, frame_plan_for, split_generation_kwargs, video_path
from lmms_eval_plugin.engine.video import FramePlan, VideoError


class TaskLoadError(ValueError):
    """--tasks names something lmms-eval cannot load with this --include_path."""


@dataclass
class Video:
    path: str
    plan: FramePlan
    uses: list[tuple[str, int]] = field(default_factory=list)  # (task, doc id): what the messages name

    @property
    def key(self) -> tuple[str, str]:
        return self.path, self.plan.describe()


@dataclass
class DocFailure:
    """A document whose video cannot even be located (or a task whose frame plan is impossible)."""

    task: str
    doc_id: int | None
    reason: str


def _leaf_tasks(task_dict: dict) -> list:
    tasks = []
    for value in task_dict.values():
        if isinstance(value, dict):
            tasks += _leaf_tasks(value)
        elif isinstance(value, tuple):  # (group, task) in some lmms-eval versions
            tasks += [v for v in value[1:] if v is not None]
        elif value is not None:
            tasks.append(value)
    return tasks


def load_tasks(tasks: str, include_path: str | None) -> list:
    """The task objects `lmms-eval --tasks TASKS --include_path PATH` would evaluate."""
    from lmms_eval import utils
    from lmms_eval.tasks import TaskManager, get_task_dict
    from loguru import logger

    logger.disable("lmms_eval")  # indexing logs a line for every YAML it skips
    try:
        manager = TaskManager("ERROR", include_path=include_path)
        names = [t.strip() for t in tasks.split(",") if t.strip()]
        selected = manager.match_tasks(names)
        for name in names:  # as lmms-eval's CLI: a YAML file path is a task too
            if name not in selected and os.path.isfile(name):
                selected.append(utils.load_yaml_config(name))
        missing = [n for n in names if n not in selected and "*" not in n and not os.path.isfile(n)]
        if missing or not selected:
            where = f" with --include_path {include_path}" if include_path else ""
            raise TaskLoadError(f"tasks not found{where}: {', '.join(missing or names)} (`lmms-eval --tasks list` lists them)")
        return _leaf_tasks(get_task_dict(selected, manager))
    finally:
        logger.enable("lmms_eval")


def _eval_docs(task):
    if task.has_test_docs():
        return task.test_docs()
    if task.has_validation_docs():
        return task.validation_docs()
    raise TaskLoadError(f"{task.config.task}: no test or validation split to evaluate")


def _doc_ids(task, n_docs: int, limit: float | None) -> range:
    # lmms-eval's get_sample_size: a fraction below 1 is a share of the docs, else a count
    if limit is None or limit == -1:
        return range(n_docs)
    count = math.ceil(n_docs * limit) if 0 < limit < 1 else int(limit)
    return range(min(n_docs, count))


def task_plan(task, model_defaults: SimpleNamespace, gen_kwargs: dict) -> FramePlan:
    """The frame plan the model gives this task's requests (the same for all its docs)."""
    overrides = {}
    if task.config.output_type == "generate_until":
        kwargs = {**copy.deepcopy(task.config.generation_kwargs or {}), **gen_kwargs}
        overrides = split_generation_kwargs(kwargs, None)[2]
    metadata = task.config.metadata if isinstance(task.config.metadata, dict) else {}
    return frame_plan_for(SimpleNamespace(metadata=metadata), overrides, model_defaults)


def collect(tasks: list, model_defaults: SimpleNamespace, gen_kwargs: dict, limit: float | None = None) -> tuple[list[Video], list[DocFailure]]:
    """Every distinct (video path, frame plan) the tasks' docs ask for, with the docs that ask."""
    videos: dict[tuple[str, str], Video] = {}
    failures: list[DocFailure] = []
    for task in tasks:
        name = task.config.task
        try:
            plan = task_plan(task, model_defaults, gen_kwargs)
        except FramePlanError as exc:
            failures.append(DocFailure(name, None, f"{exc} (a run stops before its first request)"))
            continue
        docs = _eval_docs(task)
        for doc_id in _doc_ids(task, len(docs), limit):
            try:
                path = video_path(lambda t=task, d=docs, i=doc_id: t.doc_to_visual(d[i]))
            except VideoError as exc:
                failures.append(DocFailure(name, doc_id, f"{exc.reason}: {exc.path}"))
                continue
            video = videos.setdefault((path, plan.describe()), Video(path, plan))
            video.uses.append((name, doc_id))
    return list(videos.values()), failures
