"""Check many videos on all cores, each under the deadline a run would give it.

One worker process per core (worker.py) takes one video at a time. A worker first reports
the video's header and its deadline (engine/deadline.py: the `decode_timeout_s` a run would
use), then its decode. Past the deadline the worker is killed and replaced, as a run kills
its decode worker; like a run, a decode that did not finish is tried once more with the
sequential reader, and a video whose worker died is tried once more, before it is failed.
Opening the file (the header read, a few MB at most) gets the deadline's minimum (60 s), or
--timeout when given.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait

from lmms_eval_plugin.check_videos.worker import Job, serve
from lmms_eval_plugin.engine.deadline import MINIMUM_S

STARTUP_S = 120.0  # a worker's imports (numpy, PyAV) on a loaded node
# As a run (engine/decode_workers.py: RETRIES, SAFE_READER): a video whose worker died or
# whose decode passed its deadline is read once more (after a deadline, sequentially), then failed.
RETRIES = 1
SAFE_READER = "sequential"
VERIFY_DEADLINES = 3  # --verify decodes twice more, one of them sequentially: three deadlines


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass
class _Task:
    key: object
    job: Job
    notes: list[str] = field(default_factory=list)  # what happened on earlier tries
    tries: int = 0
    timeouts: int = 0
    deaths: int = 0


@dataclass
class _Slot:
    process: multiprocessing.Process
    conn: object
    task: _Task | None = None
    phase: str = ""  # "header" until the worker reports the deadline, then "decode" (then "verify")
    deadline_s: float = 0.0
    until: float = 0.0  # monotonic time past which the worker is killed
    header: dict = field(default_factory=dict)
    decoded: dict = field(default_factory=dict)  # --verify: the run's decode, while the comparison runs


class _Workers:
    def __init__(self, cache_dir: str | None):
        self._ctx = multiprocessing.get_context("spawn")  # the parent holds lmms-eval's threads: no fork
        self.cache_dir = cache_dir

    def spawn(self, n: int = 1) -> list[_Slot]:
        """`n` started workers; they boot (import) in parallel."""
        slots = []
        for _ in range(n):
            parent, child = self._ctx.Pipe()
            process = self._ctx.Process(target=serve, args=(child,), daemon=True, name="lvu-ext check-videos worker")
            process.start()
            child.close()
            slots.append(_Slot(process, parent))
        for slot in slots:  # wait for their imports: a deadline counts from the job's start, not the worker's
            if not slot.conn.poll(STARTUP_S) or slot.conn.recv() != "ready":
                for other in slots:
                    self.kill(other)
                raise RuntimeError(f"a check-videos worker did not start in {STARTUP_S:.0f} s")
        return slots

    def start(self, slot: _Slot, task: _Task, header_limit_s: float) -> None:
        slot.task, slot.phase, slot.header, slot.decoded = task, "header", {}, {}
        slot.deadline_s, slot.until = header_limit_s, time.monotonic() + header_limit_s
        task.tries += 1
        slot.conn.send((id(task), task.job, self.cache_dir))

    @staticmethod
    def kill(slot: _Slot) -> None:
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join(10)
        slot.conn.close()

    @staticmethod
    def stop(slot: _Slot) -> None:
        try:
            slot.conn.send(None)
        except OSError:
            pass
        slot.process.join(2)
        _Workers.kill(slot)


PHASES = {"header": "opening the file", "decode": "decoding", "verify": "comparing with the sequential decode"}


def _exit_reason(process: multiprocessing.Process) -> str:
    code = process.exitcode
    return f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"


def check_all(jobs: list[tuple[object, Job]], workers: int, header_limit_s: float | None = None,
              cache_dir: str | None = None) -> Iterator[tuple[object, dict]]:
    """(key, result) for every (key, Job) as it finishes, in any order. A result holds the
    header (probe.py), the decode (worker.decode) and `error` / `notes` / `deadline_s`."""
    header_limit_s = header_limit_s or MINIMUM_S
    pending = deque(_Task(key, job) for key, job in jobs)
    pool = _Workers(cache_dir)
    slots = pool.spawn(min(workers, len(pending)))
    try:
        while pending or any(s.task for s in slots):
            for i, slot in enumerate(slots):
                if slot.task is None and pending:
                    if not slot.process.is_alive():  # killed on a deadline: a fresh worker takes its place
                        pool.kill(slot)
                        slots[i] = slot = pool.spawn()[0]
                    pool.start(slot, pending.popleft(), header_limit_s)
            busy = [s for s in slots if s.task]
            timeout = max(0.0, min(s.until for s in busy) - time.monotonic())
            ready = set(wait([s.conn for s in busy] + [s.process.sentinel for s in busy], timeout))
            for slot in slots:
                if slot.task is None:
                    continue
                outcome = _advance(slot, ready)
                if outcome is None:
                    continue
                task, result = slot.task, outcome
                slot.task = None
                if result.pop("_replace_worker", False):
                    pool.kill(slot)  # replaced when it is next needed
                retry = result.pop("_retry", None)
                if retry is not None:
                    task.job = retry[0]
                    task.notes.append(retry[1])
                    pending.appendleft(task)
                    continue
                yield task.key, {**result, "notes": task.notes + result.get("notes", []), "tries": task.tries}
    finally:
        for slot in slots:
            pool.stop(slot) if slot.task is None else pool.kill(slot)


def _advance(slot: _Slot, ready: set) -> dict | None:
    """Read what the slot's worker said; a result when its video is finished (or given up),
    else None. `_replace_worker` / `_retry` tell check_all to kill the worker / requeue."""
    task = slot.task
    while slot.conn in ready and slot.conn.poll():
        try:
            kind, _, *payload = slot.conn.recv()
        except (EOFError, OSError):
            break
        if kind == "probe":
            slot.header, slot.deadline_s = payload
            slot.phase, slot.until = "decode", time.monotonic() + slot.deadline_s
        elif kind == "decoded":  # --verify: two more decodes (the reader's, the sequential one) to compare
            slot.decoded = payload[0]
            slot.phase, slot.until = "verify", time.monotonic() + VERIFY_DEADLINES * slot.deadline_s
        else:
            return {**slot.header, **payload[0], "deadline_s": slot.deadline_s}
    if not slot.process.is_alive() or slot.process.sentinel in ready and not slot.conn.poll():
        slot.process.join(1)
        why = f"the decoding process died ({_exit_reason(slot.process)}) while {PHASES[slot.phase]}"
        task.deaths += 1
        if task.deaths <= RETRIES:  # a run rebuilds its pool and decodes the video once more
            return {"_replace_worker": True, "_retry": (task.job, why + "; tried again")}
        return {**slot.header, "error": why, "deadline_s": slot.deadline_s, "_replace_worker": True}
    if time.monotonic() < slot.until:
        return None
    limit = f"{slot.deadline_s:.0f} s" if slot.deadline_s >= 10 else f"{slot.deadline_s:g} s"
    if slot.phase == "verify":
        return {**slot.header, **slot.decoded, "deadline_s": slot.deadline_s, "_replace_worker": True,
                "error": f"--verify: the comparison with FFmpeg's sequential decode did not finish in {VERIFY_DEADLINES} x {limit}"}
    if slot.phase == "header":
        return {**slot.header, "error": f"opening the file did not finish in {limit} (header read)", "deadline_s": slot.deadline_s,
                "_replace_worker": True}
    task.timeouts += 1
    if task.timeouts <= RETRIES:  # a run kills the decode and reads the video once more with the sequential reader
        return {"_replace_worker": True,
                "_retry": (replace(task.job, reader=SAFE_READER), f"the {task.job.reader} reader did not finish in {limit}; "
                           f"a run kills it and reads the video once more with the {SAFE_READER} reader")}
    return {**slot.header, "error": f"decode did not finish in {limit}", "deadline_s": slot.deadline_s, "_replace_worker": True}
