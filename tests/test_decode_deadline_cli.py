"""Every decode is bounded, through the real lmms-eval CLI: a reader that never returns on one
document's video (tests/fault_injection/sitecustomize.py) costs that document only, failed
and named ("decode did not finish in N s"), the others answered as a clean run answers them,
within the deadline plus a margin, with decode_workers=0 and with workers, under 1 and 3
processes; a decode worker SIGKILLed mid-run costs nothing but a retry. No process of the run
and no /dev/shm segment is left behind."""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from cli_runner import offline_env, records, run_cli, samples
from video_fixtures import TASK, TASK_DIR, write_docs, write_noise_video

pytestmark = pytest.mark.exclusive  # asserts on every /dev/shm segment and deadline-bounded wall times: runs alone

FAULTS = Path(__file__).resolve().parent / "fault_injection"
TIMEOUT_S = 3  # decode_timeout_s: the stuck video costs two deadlines (first try, sequential retry)
COLOURS = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 0, 255)]
HANG, KILL = "HANGS_FOREVER", "KILLS_ITS_WORKER"
MODES = {"in_process": "decode_workers=0", "workers": "decode_workers=2"}


def launcher(processes: int, port: int) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
            "-m", "lmms_eval"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Four solid-colour videos; doc 1's video is a copy of video 0 whose name marks it."""
    root = tmp_path_factory.mktemp("deadline")
    videos = [str(write_noise_video(root / f"v{i}.mp4", colour=c)) for i, c in enumerate(COLOURS)]
    docs = {}
    for name, marker in (("clean", "plain"), ("hang", HANG), ("kill", KILL)):
        marked = root / f"{marker}.mp4"
        shutil.copy(videos[0], marked)
        docs[name] = write_docs(root / f"docs_{name}.json", [("colour", videos[0]), ("colour", str(marked))]
                                + [("colour", v) for v in videos[1:]])
    env = offline_env(root, LVU_EXT_CACHE=str(root / "lvu_cache"), PYTHONPATH=os.pathsep.join([str(FAULTS), os.environ.get("PYTHONPATH", "")]))
    clean = root / "clean"
    run_cli(_args(clean, MODES["workers"]), dict(env, LVU_EXT_TEST_DOCS=str(docs["clean"])))
    return root, docs, env, _answers(clean)


def _args(out: Path, mode: str) -> list[str]:
    return ["--model", "lvu_ext", "--model_args", f"pretrained=tiny-random-onevision,num_frames=4,{mode},decode_timeout_s={TIMEOUT_S}",
            "--tasks", TASK, "--include_path", str(TASK_DIR), "--log_samples", "--output_path", str(out)]


def _answers(out: Path) -> dict:
    return {row["doc_id"]: row["filtered_resps"] for row in samples(out, TASK)}


def _shm() -> set[str]:
    try:
        return set(os.listdir("/dev/shm"))
    except OSError:
        return set()


def _left_behind(run_id: str, before: set[str]) -> tuple[list, list]:
    """Processes still carrying this run's id in their environment (the fork server and the
    workers inherit it), and /dev/shm segments made since `before` by a process now gone."""
    end = time.monotonic() + 15  # a worker notices its owner is gone within OWNER_POLL_S
    while True:
        alive = []
        for process in psutil.process_iter(["pid"]):
            try:
                if process.environ().get("LVU_TEST_RUN_ID") == run_id:
                    alive.append((process.pid, " ".join(process.cmdline())[:120]))
            except (psutil.Error, OSError):
                continue
        if not alive or time.monotonic() > end:
            break
        time.sleep(0.5)
    stale = [name for name in _shm() - before
             if (pid := re.search(r"(\d+)", name)) is None or not psutil.pid_exists(int(pid.group(1)))]
    return alive, stale


def _run(corpus, tmp_path, kind: str, mode: str, processes: int = 1, port: int = 0):
    root, docs, env, _ = corpus
    run_id = uuid.uuid4().hex
    env = dict(env, LVU_EXT_TEST_DOCS=str(docs[kind]), LVU_TEST_RUN_ID=run_id, LVU_TEST_HANG_MARKER=HANG,
               LVU_TEST_KILL_MARKER=KILL, LVU_TEST_KILL_FLAG_DIR=str(tmp_path))
    if processes > 1:
        env["ACCELERATE_USE_CPU"] = "1"
    before = _shm()
    out = tmp_path / "out"
    started = time.monotonic()
    proc = run_cli(_args(out, MODES[mode]), env, launcher=launcher(processes, port) if processes > 1 else None, timeout=300)
    elapsed = time.monotonic() - started
    alive, stale = _left_behind(run_id, before)
    assert not alive, f"processes of the run still alive: {alive}"
    assert not stale, f"/dev/shm segments left behind: {stale}"
    recs = [r for path in sorted(out.glob("lvu_ext_requests*.jsonl")) for r in records(path)]
    return proc, out, recs, elapsed


@pytest.mark.parametrize("mode,processes,port", [("in_process", 1, 0), ("workers", 1, 0), ("in_process", 3, 29561), ("workers", 3, 29562)])
def test_a_decode_that_never_returns_fails_only_its_document(corpus, tmp_path, mode, processes, port):
    clean_answers = corpus[3]
    proc, out, recs, elapsed = _run(corpus, tmp_path, "hang", mode, processes, port)
    failed = [r for r in recs if r["status"] == "failed"]
    assert [(r["doc_id"], r["error"]) for r in failed] == [(1, f"decode did not finish in {TIMEOUT_S} s")], failed
    assert HANG in failed[0]["video"]
    assert f"lvu_ext: {TASK} doc 1: decode did not finish in {TIMEOUT_S} s: " in proc.stdout + proc.stderr
    answers = _answers(out)
    assert answers[1] == "" and {d: a for d, a in answers.items() if d != 1} == {d: a for d, a in clean_answers.items() if d != 1}
    # two deadlines (the first reader, then the sequential one) plus a clean run's time; a
    # hang would run into run_cli's timeout instead
    assert elapsed < 2 * TIMEOUT_S + 120, elapsed


def test_a_worker_killed_mid_run_costs_only_a_retry(corpus, tmp_path):
    clean_answers = corpus[3]
    _, out, recs, _ = _run(corpus, tmp_path, "kill", "workers")
    assert (tmp_path / "killed").exists()  # the worker reading doc 1's video did kill itself
    assert [r["status"] for r in recs] == ["ok"] * len(clean_answers)
    assert _answers(out) == clean_answers
