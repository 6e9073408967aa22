"""`lvu-ext check-videos` on a local task whose docs mix good, missing, truncated, garbage
and hanging videos: every bad one named with its reason (the reason a run gives: the same
load_video), exit 1, good ones read in full; a hang is killed at its deadline with no
process left; a rerun skips what it already checked; a decode past its deadline is killed,
retried with the sequential reader as a run does, then failed."""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from pathlib import Path

import av
import numpy as np
import psutil
import pytest

from conftest import write_video
from lmms_eval_plugin.check_videos.cli import main
from lmms_eval_plugin.check_videos.run import check_all
from lmms_eval_plugin.check_videos.worker import Job
from lmms_eval_plugin.engine.video import FramePlan
from video_fixtures import TASK_DIR, make_videos, write_docs

pytestmark = pytest.mark.exclusive  # asserts on wall-time bounds on hanging decodes: runs alone

FRAMES = 8  # the task's lvu_num_frames
HANG_S = 3  # --timeout: the hanging file's deadline
TASK = "lvu_check_videos"
KINDS = ["good", "good", "missing", "harness_exit", "corrupt", "truncated", "cut_short", "no_frames", "short", "vfr", "hang", "good2",
         "bframes_avi"]
BAD = {"missing": "video file not found", "corrupt": "unreadable or corrupt video", "truncated": "unreadable or corrupt video",
       "cut_short": "cut short", "no_frames": "no decodable video frames", "hang": f"opening the file did not finish in {HANG_S} s"}
GOOD = ("good", "good2", "vfr", "short", "bframes_avi")


def write_cut_short(path: Path, n_frames: int = 40) -> Path:
    """An MP4 with its index first (faststart), cut after 60 % of its bytes: the header lists
    every frame, the tail's frames are gone."""
    rng = np.random.default_rng(5)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(n_frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(rng.integers(0, 60, (48, 64, 3), dtype=np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def write_bframes_avi(path: Path, n_frames: int = 60) -> Path:
    """MPEG-4 Part 2 with B-frames in AVI (timestamps in decode order): decord returns other
    frames than FFmpeg's sequential decode (issue 27's 'garbage' class)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.max_b_frames, stream.codec_context.gop_size = 2, 12
        for t in range(n_frames):
            img = np.full((48, 64, 3), t * 4 % 256, np.uint8)
            img[10:22, t % 50 : t % 50 + 12] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def sequential_count(path: str) -> int:
    """The oracle: FFmpeg's sequential decode of the first video stream."""
    with av.open(path) as container:
        return sum(1 for _ in container.decode(video=0))


def spawned_children() -> list:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # exited meanwhile
            pass
    return found


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("check_videos")
    videos = make_videos(root / "videos")
    videos["cut_short"] = str(write_cut_short(root / "videos" / "cut_short.mp4"))
    videos["bframes_avi"] = str(write_bframes_avi(root / "videos" / "bframes.avi"))
    videos["hang"] = str(root / "videos" / "hang.mp4")
    os.mkfifo(videos["hang"])  # opening it for reading blocks until a writer comes: none will
    docs = write_docs(root / "docs.json", [(kind, videos[kind]) for kind in KINDS])
    tasks = root / "tasks"
    tasks.mkdir()
    (tasks / f"{TASK}.yaml").write_text(f"include: {TASK_DIR / 'lvu_test_videos.yaml'}\ntask: {TASK}\n"
                                        f"metadata:\n  version: 0.1\n  lvu_num_frames: {FRAMES}\n")
    return root, videos, docs, tasks


def run_check(setup, capfd, monkeypatch, out: Path, *extra) -> tuple[int, dict, str, float]:
    _, _, docs, tasks = setup
    monkeypatch.setenv("LVU_EXT_TEST_DOCS", str(docs))
    start = time.monotonic()
    rc = main(["--tasks", TASK, "--include_path", str(tasks), "--out", str(out), "--timeout", str(HANG_S), "--workers", "2", *extra])
    elapsed = time.monotonic() - start
    console = "".join(capfd.readouterr())
    return rc, json.loads((out / "check_videos.json").read_text()), console, elapsed


def test_bad_videos_named_with_reasons_and_resumed(setup, capfd, monkeypatch, tmp_path):
    _, videos, _, _ = setup
    out = tmp_path / "out"
    rc, report, console, _ = run_check(setup, capfd, monkeypatch, out)
    markdown = (out / "check_videos.md").read_text()
    assert rc == 1, console
    by_path = {v["path"]: v for v in report["videos"]}
    assert len(by_path) == len(set(KINDS) - {"harness_exit"})  # one entry per distinct video
    assert [u[1] for u in by_path[videos["good"]]["uses"]] == [0, 1]  # deduplicated, both docs kept

    for kind, reason in BAD.items():
        entry = by_path[videos[kind]]
        assert entry["status"] == "fail" and reason in entry["reasons"][0], (kind, entry)
        doc_id = KINDS.index(kind)
        for text in (console, markdown):
            assert f"{videos[kind]}: " in text and reason in text and f"{TASK} doc {doc_id}" in text, (kind, text[-3000:])
    assert by_path[videos["cut_short"]]["truncated"] is True
    assert not by_path[videos["missing"]]["found"]
    # the document whose video the task's own helper cannot locate (it calls sys.exit)
    (nowhere,) = report["docs_without_video"]
    assert nowhere["doc_id"] == KINDS.index("harness_exit") and "could not locate the video" in nowhere["reason"]
    assert f"FAIL {TASK} doc {nowhere['doc_id']}: " in console

    for kind in GOOD:
        entry = by_path[videos[kind]]
        total = sequential_count(videos[kind])
        assert entry["total_frames"] == total and entry["frames_decoded"] == entry["indices_planned"] == min(FRAMES, total), entry
        assert entry["status"] == ("warn" if kind == "short" else "ok"), entry
        assert (entry["container"].split(",")[0], entry["codec"]) == (("avi", "mpeg4") if kind == "bframes_avi" else ("mov", "h264"))
        assert entry["decode_s"] > 0 and entry["backend"] in ("pyav_sparse", "pyav_sequential")
    assert "plan asks 8" in by_path[videos["short"]]["reasons"][0]
    summary = report["summary"]
    assert (summary["ok"], summary["warn"], summary["fail"]) == (len(GOOD) - 1, 1, len(BAD))
    assert summary["decode_core_hours"] > 0 and "core-hours" in console and "core-hours" in markdown

    # the hang: killed at its deadline, not retried (a header read is not a reader's), nothing left running
    hang = by_path[videos["hang"]]
    assert hang["deadline_s"] == HANG_S and hang["tries"] == 1
    assert summary["elapsed_s"] < HANG_S + 30
    assert not spawned_children()

    # rerun: everything unchanged is taken from the journal; a touched file is read again
    os.utime(videos["good2"])
    rc2, report2, console2, elapsed2 = run_check(setup, capfd, monkeypatch, out)
    assert rc2 == 1 and report2["summary"]["resumed"] == len(by_path) - 1
    assert report2["summary"]["elapsed_s"] < HANG_S  # the hanging file was not opened again
    assert {v["path"]: v["status"] for v in report2["videos"]} == {p: v["status"] for p, v in by_path.items()}
    assert all(f"{videos[kind]}: " in console2 for kind in BAD)
    journal = [json.loads(line) for line in (out / "videos.jsonl").read_text().splitlines()]
    assert len(journal) == len(by_path) + 1 and journal[-1]["identity"]["path"] == videos["good2"]


def test_usage_errors_are_one_line(setup, capfd, monkeypatch, tmp_path):
    assert main(["--tasks", "no_such_task_anywhere", "--include_path", str(setup[3]), "--out", str(tmp_path)]) == 2
    assert "tasks not found" in capfd.readouterr().err
    assert main(["--tasks", TASK, "--num-frames", "0"]) == 2
    assert "--num-frames 0: must be an integer >= 1" in capfd.readouterr().err


@pytest.fixture(scope="module")
def slow_clip(tmp_path_factory) -> str:
    """A clip whose decode takes ~0.2 s here: longer than a tiny deadline, long enough to be killed in."""
    return str(write_video(tmp_path_factory.mktemp("slow") / "slow.mp4", n_frames=300, size=(160, 120)))


def test_decode_past_its_deadline_is_killed_retried_sequentially_then_failed(slow_clip):
    # A real decode, just slower than its deadline (0.02 s): killed, read again by the
    # sequential reader (as a run retries), killed again, failed with both attempts named.
    slow = slow_clip
    start = time.monotonic()
    ((key, result),) = list(check_all([("slow", Job(slow, FramePlan(FRAMES), "auto", 0.02))], workers=1, header_limit_s=30))
    assert key == "slow" and result["tries"] == 2, result
    assert result["error"] == "decode did not finish in 0.02 s", result
    assert result["notes"] == ["the auto reader did not finish in 0.02 s; a run kills it and reads the video once more with the sequential reader"]
    assert time.monotonic() - start < 30
    assert not spawned_children()


def test_a_worker_killed_mid_decode_is_replaced_and_the_video_read_again(slow_clip):
    # SIGKILL from outside while the worker has the video open (as a run's pool rebuilds and
    # retries the videos in flight): the video is read by a fresh worker and answered.
    killed = []

    def kill_the_reader():
        give_up = time.monotonic() + 60
        while not killed and time.monotonic() < give_up:
            for child in spawned_children():
                try:
                    if any(f.path == slow_clip for f in child.open_files()):
                        child.kill()
                        killed.append(child.pid)
                        return
                except psutil.Error:
                    pass
            time.sleep(0.002)

    killer = threading.Thread(target=kill_the_reader, daemon=True)
    killer.start()
    ((_, result),) = list(check_all([("slow", Job(slow_clip, FramePlan(FRAMES), "auto", "auto"))], workers=1))
    killer.join(5)
    assert killed, "the worker was never seen with the video open"
    assert result["tries"] == 2 and "error" not in result and result["frames_decoded"] == FRAMES, result
    assert result["notes"][0].startswith("the decoding process died (killed by signal 9) while "), result
    assert not spawned_children()


@pytest.mark.skipif(importlib.util.find_spec("decord") is None, reason="decord (the optional legacy reader) is not installed")
def test_verify_fails_a_reader_that_returns_other_frames(setup, capfd, monkeypatch, tmp_path):
    """--decoder decord --verify: the AVI that decord reads wrong fails, named, with how many
    sampled frames differ from FFmpeg's sequential decode; the plain H.264 clips pass."""
    _, videos, _, _ = setup
    out = tmp_path / "out"
    rc, report, console, _ = run_check(setup, capfd, monkeypatch, out, "--decoder", "decord", "--verify")
    by_path = {v["path"]: v for v in report["videos"]}
    avi = by_path[videos["bframes_avi"]]
    assert rc == 1 and avi["status"] == "fail" and avi["backend"] == "decord", avi
    assert "decord reader's frames differ from FFmpeg's sequential decode" in avi["reasons"][0]
    assert f"{videos['bframes_avi']}: the decord reader's frames differ" in console
    for kind in ("good", "good2"):
        assert by_path[videos[kind]]["status"] == "ok" and by_path[videos[kind]]["verify_max_mean_abs_diff"] <= 4, by_path[videos[kind]]


def test_verify_passes_the_default_reader(tmp_path):
    """--verify with the default reader on H.264: the sparse reader's frames are the
    sequential decode's, bit for bit."""
    clip = str(write_video(tmp_path / "clip.mp4", n_frames=60))
    ((_, result),) = list(check_all([("clip", Job(clip, FramePlan(FRAMES), "auto", "auto", verify=True))], workers=1))
    assert result["backend"] == "pyav_sparse" and "error" not in result, result
    assert result["verify_max_mean_abs_diff"] == 0.0 and result["sequential_total_frames"] == sequential_count(clip) == 60
