"""Run a table's rows through the lmms-eval CLI, one row per output folder, skipping rows
whose results are already there, and read each row's harness number back."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time
from pathlib import Path

from lmms_eval_plugin.reproduce.commands import executable_argv
from lmms_eval_plugin.reproduce.tables import Row
from lmms_eval_plugin.reproduce.verdict import Measured

log = logging.getLogger("lvu_ext.reproduce")

COMMAND_FILE = "command.json"  # the argv a row folder was made by
ROW_FILE = "row.json"  # how the last run of the row ended, and how long it took
LOG_FILE = "lmms_eval.log"


class StaleRowError(RuntimeError):
    """A row folder made by another command (checkpoint, limit, args): never mixed in."""


def check_folder(row: Row, folder: Path, argv: list[str]) -> None:
    path = folder / COMMAND_FILE
    if path.is_file():
        made_by = json.loads(path.read_text(encoding="utf-8")).get("argv")
        if made_by != argv:
            raise StaleRowError(f"{folder} holds row {row.id} run by another command:\n  {made_by}\nnot\n  {argv}\n"
                                "use another --out, or delete that folder to run the row again")


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


def run_row(row: Row, folder: Path, argv: list[str], frames_per_doc: int | None) -> tuple[Measured | None, str]:
    """Run one row; (its measurement, '' or why it failed). The lmms-eval output goes to the
    row's log; lmms-eval exits 0 even when evaluation raised, so success is a results file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / COMMAND_FILE).write_text(json.dumps({"argv": argv}, indent=1), encoding="utf-8")
    log_path = folder / LOG_FILE
    started = time.monotonic()
    with open(log_path, "a", encoding="utf-8") as out:
        child = subprocess.Popen(executable_argv(argv), stdout=out, stderr=subprocess.STDOUT)
        previous = signal.signal(signal.SIGTERM, _raise_exit)
        try:
            returncode = child.wait()
        finally:  # interrupted: stop the row's lmms-eval too; its journal keeps what it answered
            signal.signal(signal.SIGTERM, previous)
            if child.poll() is None:
                child.terminate()
                child.wait()
    wall_s = time.monotonic() - started
    got = measured(row, folder)
    why = ""
    if returncode != 0:
        why = f"lmms-eval exited {returncode}: {_last_error(log_path)} (log: {log_path})"
    elif got is None:
        why = f"lmms-eval wrote no {row.task} results: {_last_error(log_path)} (log: {log_path})"
    frames = got.n * frames_per_doc if got and got.n and frames_per_doc else None
    info = {"row": row.id, "task": row.task, "returncode": returncode, "wall_s": round(wall_s, 2), "docs": got.n if got else None,
            "frames": frames, "failed": why or None}
    (folder / ROW_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
    return (None if why else got), why


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def _last_error(log_path: Path) -> str:
    lines = [line.strip() for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line[-300:]
    return lines[-1][-300:] if lines else "no output"
