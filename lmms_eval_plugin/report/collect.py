"""Read lmms-eval output folders into one record per (results file, recognised task)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from lmms_eval_plugin.report.benchmarks import Benchmark, benchmark_for_task
from lmms_eval_plugin.report.provenance import UNKNOWN, provenance
from lmms_eval_plugin.report.runinfo import Frames, frames_of, model_label, parse_model_args, settings_label

log = logging.getLogger("lvu_ext.report")

RESULTS_SUFFIX = "_results.json"


# lmms-eval's MLVU extraction (mlvu/utils.py extract_characters_regex) reads only A-D.
MLVU_TEST_NOTE = ("6-option questions: the harness's answer extraction reads only A-D, so a question whose answer is "
                  "E or F always counts as wrong; a test score only if the data carried the ground truth (README, Comparison report)")


class NoResultsError(RuntimeError):
    """No `*_results.json` under any of the given paths."""


class BadSamplesError(ValueError):
    """A samples JSONL line that does not parse: its sub-scores are left blank."""


@dataclass
class Record:
    model: str
    settings: str
    frames: Frames
    benchmark: Benchmark
    task: str
    scores: dict[str, float]  # column -> percent
    date: str  # harness `date` (YYYYMMDD_HHMMSS), sortable
    mtime: float
    path: str
    n_samples: int | None = None
    limit: object = None
    notes: list[str] = field(default_factory=list)
    harness: str = UNKNOWN  # lmms-eval version (provenance.py)
    revision: str = UNKNOWN  # checkpoint commit
    effective_args: dict[str, str] = field(default_factory=dict)

    @property
    def row_key(self):
        # runs scored by another harness version or on other weights are other rows
        return (self.model, self.settings, self.frames, self.harness, self.revision)


def find_results(paths: list[str]) -> list[Path]:
    found = []
    for p in map(Path, paths):
        if p.is_file() and p.name.endswith(RESULTS_SUFFIX):
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(p.rglob(f"*{RESULTS_SUFFIX}")))
        elif not p.exists():
            raise NoResultsError(f"{p}: no such file or folder")
    if not found:
        raise NoResultsError(
            f"no lmms-eval results (*{RESULTS_SUFFIX}) under: {', '.join(paths)} (run lmms-eval with --output_path, and --log_samples for sub-scores)"
        )
    return found


def _harness_value(task_results: dict, metric: str):
    """`<metric>,<filter>`: the harness keys every metric by its filter ('none' here)."""
    for key, value in task_results.items():
        name, _, _filter = key.partition(",")
        if name == metric and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _samples(results_path: Path, task: str, field_name: str) -> list[dict] | None:
    prefix = results_path.name[: -len(RESULTS_SUFFIX)]
    path = results_path.with_name(f"{prefix}_samples_{task}.jsonl")
    if not path.is_file():
        return None
    out = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:  # a run killed while writing, a disk that filled up
                raise BadSamplesError(f"{path} line {number} is not JSON ({exc}; cut short?)") from None
            value = row.get(field_name) if isinstance(row, dict) else None
            if isinstance(value, dict):
                out.append(value)
    return out


def _skip(skipped: list | None, path: Path, why: str) -> list:
    log.warning("skipped %s: %s", path, why)
    if skipped is not None:
        skipped.append(f"{path}: {why}")
    return []


def read_results(path: Path, skipped: list | None = None) -> list[Record]:
    """The records of one results file; a file that is not an lmms-eval results object is
    skipped, named in the log and in `skipped`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return _skip(skipped, path, f"not readable JSON ({exc})")
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        return _skip(skipped, path, f"valid JSON but not an lmms-eval results object (top level: {type(data).__name__}"
                                    + (", no 'results' object)" if isinstance(data, dict) else ")"))
    if not isinstance(data.get("config") or {}, dict) or not isinstance(data.get("configs") or {}, dict):
        return _skip(skipped, path, "its 'config' / 'configs' entries are not objects")
    config = data.get("config") or {}
    args = parse_model_args(config.get("model_args"))
    model = model_label(str(config.get("model") or data.get("model_source") or "?"), args)
    settings = settings_label(args)
    prov = provenance(data, path, str(config.get("model") or ""), args)
    # A group's own entry only repeats its subtasks, which are read one by one.
    groups = {g for g, subtasks in (data.get("group_subtasks") or {}).items() if subtasks}
    records = []
    for task, task_results in (data.get("results") or {}).items():
        if not isinstance(task_results, dict):
            _skip(skipped, path, f"task {task!r}: its results entry is {type(task_results).__name__}, not an object")
            continue
        bench = benchmark_for_task(task)
        if bench is None:
            if task not in groups:
                log.info("skipped task %r in %s: not a benchmark this report knows", task, path)
            continue
        value = _harness_value(task_results, bench.metric)
        if value is None:
            log.warning("skipped task %r in %s: no %r value", task, path, bench.metric)
            continue
        task_config = (data.get("configs") or {}).get(task) or {}
        rec = Record(
            model=model,
            settings=settings,
            frames=frames_of(task_config.get("metadata"), args),
            benchmark=bench,
            task=task,
            scores={bench.main: value * bench.scale},
            date=str(data.get("date") or ""),
            mtime=os.path.getmtime(path),
            path=str(path),
            n_samples=((data.get("n-samples") or {}).get(task) or {}).get("effective"),
            limit=config.get("limit"),
            harness=prov.harness,
            revision=prov.revision,
            effective_args=prov.effective_args,
        )
        rec.notes.extend(prov.notes)
        if bench.key == "mlvu_test":
            rec.notes.append(MLVU_TEST_NOTE)
        if rec.limit is not None:
            rec.notes.append(f"--limit {rec.limit}: {rec.n_samples} samples, not the whole benchmark")
        _add_subscores(rec, path)
        records.append(rec)
    return records


def _add_subscores(rec: Record, path: Path) -> None:
    if len(rec.benchmark.columns) == 1:
        return
    try:
        samples = _samples(path, rec.task, rec.benchmark.samples_field)
    except BadSamplesError as exc:
        rec.notes.append(f"sub-scores blank: {exc}")
        log.warning("%s %s: %s", path, rec.task, rec.notes[-1])
        return
    if samples is None:
        rec.notes.append("no samples file: sub-scores blank (run with --log_samples)")
        return
    rebuilt = rec.benchmark.rebuild(samples)
    main = rec.benchmark.main
    # The harness's own headline stays; a disagreeing rebuild means the samples file
    # is not this run's (or the task changed its scoring), so its sub-scores are not used.
    if main in rebuilt and abs(rebuilt[main] - rec.scores[main]) > 0.01:
        rec.notes.append(f"samples give {main} {rebuilt[main]:.2f}, results JSON {rec.scores[main]:.2f}: sub-scores not used")
        log.warning("%s %s: %s", path, rec.task, rec.notes[-1])
        return
    rec.scores.update({k: v for k, v in rebuilt.items() if k != main})


def collect(paths: list[str], skipped: list | None = None) -> list[Record]:
    records = []
    for path in find_results(paths):
        try:
            records.extend(read_results(path, skipped))
        except (AttributeError, TypeError, KeyError, ValueError) as exc:  # some other field of an unexpected type
            _skip(skipped, path, f"unexpected layout ({type(exc).__name__}: {exc})")
    return records


def newest_per_setting(records: list[Record]) -> tuple[list[Record], list[Record]]:
    """Several runs of one (model, settings, frames, benchmark): the newest wins, by the
    harness's recorded date, then file time. Returns (kept, superseded)."""
    best: dict[tuple, Record] = {}
    superseded = []
    for rec in sorted(records, key=lambda r: (r.date, r.mtime)):
        key = rec.row_key + (rec.benchmark.key,)
        if key in best:
            superseded.append(best[key])
            log.info("%s (%s) superseded by newer %s", best[key].path, best[key].task, rec.path)
        best[key] = rec
    return list(best.values()), superseded
