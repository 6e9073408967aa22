"""Run a table's rows through the lmms-eval CLI, one row per output folder, skipping rows
whose results are already there, and read each row's harness number back."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from lmms_eval_plugin.reproduce import lifecycle
from lmms_eval_plugin.reproduce.commands import executable_argv
from lmms_eval_plugin.reproduce.failure import cause
from lmms_eval_plugin.reproduce.tables import Row
from lmms_eval_plugin.reproduce.verdict import Measured

log = logging.getLogger("lvu_ext.reproduce")

COMMAND_FILE = "command.json"  # the argv a row folder was made by
ROW_FILE = "row.json"  # how the last run of the row ended, and how long it took
LOG_FILE = "lmms_eval.log"


class StaleRowError(RuntimeError):
    """A row folder made by another command (checkpoint, limit, args): never mixed in."""


def check_folder(row: Row, folder: Path, argv: list[str]) -> None:
    """Refuse a folder holding answers of another command; a folder whose other command
    failed before answering anything holds nothing to mix in: it is run again (said)."""
    path = folder / COMMAND_FILE
    if path.is_file():
        made_by = json.loads(path.read_text(encoding="utf-8")).get("argv")
        if made_by != argv:
            if not has_answers(folder):
                log.info("%s: %s was run by another command that failed before answering anything: it runs again with this one",
                         row.id, folder)
                return
            raise StaleRowError(f"{folder} holds answers of row {row.id} run by another command:\n  {made_by}\nnot\n  {argv}\n"
                                "use another --out, or delete that folder to run the row again")


def has_answers(folder: Path) -> bool:
    """Whether any question of the row was answered there: a results or samples file, a
    journal entry or a request record."""
    if any(folder.rglob("*_results.json")) or any(folder.rglob("*_samples_*.jsonl")):
        return True
    files = [*folder.glob("journal/lvu_ext_journal_rank*.jsonl"), *folder.glob("lvu_ext_requests*.jsonl")]
    return any(p.is_file() and p.read_text(encoding="utf-8", errors="replace").strip() for p in files)


def measured(row: Row, folder: Path) -> Measured | None:
    """The row's harness number from the newest results file in its folder, or None."""
    from lmms_eval_plugin.report.collect import RESULTS_SUFFIX, read_results

    for path in sorted(folder.rglob(f"*{RESULTS_SUFFIX}"), key=lambda p: p.name, reverse=True):
        for rec in read_results(path):
            if rec.task == row.task and row.column in rec.scores:
                return Measured(score=rec.scores[row.column], n=rec.n_samples, harness=rec.harness, revision=rec.revision,
                                limit=rec.limit, peak_mem_gb=_peak_mem(folder), results_path=str(path))
    return None


def _peak_mem(folder: Path) -> float | None:
    peaks = []
    for path in folder.glob("lvu_ext_requests*.jsonl"):  # the records lvu_ext writes beside the results
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                value = json.loads(line).get("peak_mem_gb")
            except (ValueError, AttributeError):
                continue
            if isinstance(value, (int, float)):
                peaks.append(float(value))
    return max(peaks) if peaks else None


def run_row(row: Row, folder: Path, argv: list[str]) -> tuple[Measured | None, str]:
    """Run one row; (its measurement, '' or why it failed). The lmms-eval output goes to the
    row's log; lmms-eval exits 0 even when evaluation raised, so success is a results file.
    An interrupt (lifecycle.Interrupted) stops the child's whole process group first; the
    row's journal keeps what it answered."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / COMMAND_FILE).write_text(json.dumps({"argv": argv}, indent=1), encoding="utf-8")
    log_path = folder / LOG_FILE
    started = time.monotonic()
    with open(log_path, "a", encoding="utf-8") as out:
        child = lifecycle.start_child(executable_argv(argv), out)
        try:
            returncode = child.wait()
        finally:
            lifecycle.stop_child(child)  # a second Ctrl-C waits until the row's processes are gone
    wall_s = time.monotonic() - started
    got = measured(row, folder)
    why = ""
    if returncode != 0:
        why = f"lmms-eval exited {returncode}: {cause(log_path)} (log: {log_path})"
    elif got is None:
        why = f"lmms-eval wrote no {row.task} results: {cause(log_path)} (log: {log_path})"
    info = {"row": row.id, "task": row.task, "returncode": returncode, "wall_s": round(wall_s, 2), "docs": got.n if got else None,
            "frames": sampled_frames(folder) if got else None, "failed": why or None, "log": str(log_path)}
    (folder / ROW_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
    return (None if why else got), why


def sampled_frames(folder: Path) -> int | None:
    """Frames the row really decoded: the sum of `frames_sampled` over lvu_ext's request
    records (a clip shorter than the plan gives all its frames, not the plan's count)."""
    total, seen = 0, False
    for path in folder.glob("lvu_ext_requests*.jsonl"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                value = json.loads(line).get("frames_sampled")
            except (ValueError, AttributeError):
                continue
            if isinstance(value, int):
                total, seen = total + value, True
    return total if seen else None
