"""Decode workers (`decode_workers=N`): worker processes decode and preprocess the next
videos. The visual features equal the in-process path's bit for bit (the same processor on
the same frames); a broken video fails only its own documents, with the same message; a
killed worker costs a retry, never a hang; the look-ahead holds no more than its bound."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from conftest import FAMILIES, make_lm, make_request
from lmms_eval_plugin.engine import frame_source
from lmms_eval_plugin.engine.decode_workers import WorkerPrefetcher
from lmms_eval_plugin.engine.video import FramePlan, VideoError
from video_fixtures import write_noise_video

pytestmark = pytest.mark.exclusive  # asserts on wall-time bounds on killed and hung workers, 1 GB of /dev/shm: runs alone

GEN = {"max_new_tokens": 6, "temperature": 0}
QUESTIONS = ["What colour is it?\nA. red\nB. blue\nAnswer with the option's letter.",
             "Is it moving?\nA. yes\nB. no\nAnswer with the option's letter."]
FRAMES = {"lvu_num_frames": 6}
IN_PROCESS = {"decode_workers": 0, "prefetch": 0}
WORKERS = {"decode_workers": 2, "prefetch": 2}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    # noise at sizes above the processors' inputs, so resizing and normalising both matter
    root = tmp_path_factory.mktemp("worker_videos")
    sizes = [(320, 240), (200, 120), (96, 160)]
    return [str(write_noise_video(root / f"v{i}.mp4", seed=i, size=size, n_frames=20 + 5 * i)) for i, size in enumerate(sizes)]


def _requests(lm, pairs):
    return [make_request(lm, v, q, GEN, doc_id=i, metadata=FRAMES, task="workers") for i, (v, q) in enumerate(pairs)]


def _features(lm) -> dict:
    return {prepared.record["video"]: prepared.features for prepared in lm.video_cache._entries.values()}


def _records(path):
    import json

    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("family", FAMILIES)
def test_worker_features_equal_the_in_process_path_bit_for_bit(family, tiny_checkpoints, videos, tmp_path):
    pairs = [(v, q) for q in QUESTIONS for v in videos]
    # 6 frames in processor chunks of 4: each video splits into two parts, one per worker
    here = make_lm(tiny_checkpoints[family], video_cache=3, vision_batch=4, **IN_PROCESS)
    answers_here = here.generate_until(_requests(here, pairs))
    records = tmp_path / "records.jsonl"
    there = make_lm(tiny_checkpoints[family], video_cache=3, vision_batch=4, record_path=str(records), **WORKERS)
    answers_there = there.generate_until(_requests(there, pairs))
    assert there.frames.workers == 2 and there.frames.prefetched >= 1  # the worker path ran, ahead
    assert answers_there == answers_here
    here_features, there_features = _features(here), _features(there)
    assert set(here_features) == set(videos) == set(there_features)
    for video in videos:
        assert here_features[video].dtype == there_features[video].dtype
        assert here_features[video].equal(there_features[video]), video  # bit for bit
    lines = _records(records)
    assert all(r["wait_s"] >= 0 for r in lines)
    assert [r["wait_s"] for r in lines if r["video_cache_hit"]] == [0.0] * sum(r["video_cache_hit"] for r in lines)


def test_a_broken_video_in_a_worker_fails_only_its_documents(tiny_checkpoints, videos, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    pairs = [(videos[0], QUESTIONS[0]), (str(broken), QUESTIONS[0]), (videos[1], QUESTIONS[0]), (str(broken), QUESTIONS[1])]
    here_records, there_records = tmp_path / "here.jsonl", tmp_path / "there.jsonl"
    here = make_lm(tiny_checkpoints["llava_onevision"], record_path=str(here_records), **IN_PROCESS)
    there = make_lm(tiny_checkpoints["llava_onevision"], record_path=str(there_records), **WORKERS)
    answers_here = here.generate_until(_requests(here, pairs))
    answers_there = there.generate_until(_requests(there, pairs))
    assert answers_there == answers_here and answers_there[1] == answers_there[3] == ""
    failed_here = [(r["doc_id"], r["error"]) for r in _records(here_records) if r["status"] == "failed"]
    failed_there = [(r["doc_id"], r["error"]) for r in _records(there_records) if r["status"] == "failed"]
    assert failed_there == failed_here and [d for d, _ in failed_there] == [1, 3]
    assert all("unreadable or corrupt video" in e and str(broken) in e for _, e in failed_there)


def _long_video(tmp_path, name="long.mp4"):
    # long enough to decode for a while, so a worker can be killed mid-way
    return str(write_noise_video(tmp_path / name, size=(640, 360), n_frames=240))


def _pool_pids(prefetcher) -> list[int]:
    pool = prefetcher._pool
    return list(pool._processes) if pool is not None and pool._processes else []


def test_a_killed_worker_is_replaced_and_its_video_decoded_again(tiny_checkpoints, tmp_path):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_checkpoints["llava_onevision"]).video_processor
    video, plan = _long_video(tmp_path), FramePlan(200)
    job = (video, plan)
    with WorkerPrefetcher(1, 2, processor, None, 16) as prefetcher:
        prefetcher.ahead([(job, job)])
        deadline = time.monotonic() + 60
        while not _pool_pids(prefetcher):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(_pool_pids(prefetcher)[0], signal.SIGKILL)  # mid-decode
        started = time.monotonic()
        result = prefetcher.take(job, job)
        assert prefetcher.restarts == 1
        assert len(result.indices) == 200 and result.pixels.shape[0] == 200
        assert time.monotonic() - started < 120


def test_a_worker_that_keeps_dying_fails_its_video_and_never_hangs(tiny_checkpoints, tmp_path):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_checkpoints["llava_onevision"]).video_processor
    video = _long_video(tmp_path, "always_killed.mp4")
    job = (video, FramePlan(200))
    stop = threading.Event()
    with WorkerPrefetcher(1, 0, processor, None, 16) as prefetcher:
        def kill_every_worker():  # an OOM killer that takes every worker this pool starts
            while not stop.is_set():
                for pid in _pool_pids(prefetcher):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.01)

        killer = threading.Thread(target=kill_every_worker, daemon=True)
        killer.start()
        started = time.monotonic()
        try:
            with pytest.raises(VideoError, match="decode worker process died 2 times") as caught:
                prefetcher.take(job, job)
        finally:
            stop.set()
            killer.join()
        assert caught.value.path == video  # named like any other bad video: its documents fail, the run goes on
        assert time.monotonic() - started < 120


def test_the_look_ahead_holds_at_most_its_bound(tmp_path):
    """prefetch at its maximum (16) with the real OneVision processor (384 x 384): the main
    process holds at most 17 videos' processor outputs, the current one and 16 ahead
    (README, "Decode workers")."""
    import psutil
    import torch
    from transformers import LlavaOnevisionVideoProcessor

    free = frame_source.shm_free_bytes()
    if free is not None and free < 1e9:
        pytest.skip(f"/dev/shm has {free / 1e9:.2f} GB free: too little to hold 17 look-ahead videos")
    processor = LlavaOnevisionVideoProcessor()  # the published checkpoint's video processor settings
    frames = 8
    jobs = []
    for i in range(21):
        path = str(write_noise_video(tmp_path / f"c{i}.mp4", seed=i, size=(1280, 720), n_frames=frames))
        jobs.append(((path, FramePlan(frames)), (path, FramePlan(frames))))
    per_video = frames * 3 * 384 * 384 * 4  # float32 pixel values
    bound = (frame_source.MAX_PREFETCH + 1) * per_video
    me = psutil.Process()
    with WorkerPrefetcher(2, frame_source.MAX_PREFETCH, processor, None, 16) as prefetcher:
        prefetcher.take(*jobs[0])  # pool started, a first video through: the baseline
        before = me.memory_info().rss
        prefetcher.ahead(jobs[1:])
        assert len(prefetcher._futures) == frame_source.MAX_PREFETCH + 1  # never more than the cap in flight
        held = [prefetcher.take(*job) for job in jobs[1 : frame_source.MAX_PREFETCH + 2]]  # the parts joined
        total = sum(float(v.pixels.sum()) for v in held)  # every page touched, as the vision tower will
        grown = me.memory_info().rss - before
        assert torch.isfinite(torch.tensor(total))
        assert all(v.frames.size == 0 for v in held)  # the full-resolution frames stayed in the workers
        assert grown <= bound * 1.1 + 64e6, (grown / 1e6, bound / 1e6)


def test_default_workers_follow_the_cpus_and_the_processes_on_the_node(monkeypatch):
    monkeypatch.setattr(frame_source, "shm_free_bytes", lambda: 32e9)  # whatever this machine's /dev/shm holds
    assert frame_source.default_decode_workers(cpus=2, processes=1) == 2
    assert frame_source.default_decode_workers(cpus=16, processes=1) == 8
    assert frame_source.default_decode_workers(cpus=128, processes=8) == 8
    assert frame_source.default_decode_workers(cpus=16, processes=8) == 2
    assert frame_source.default_decode_workers(cpus=4, processes=8) == 1

    class Args:
        decode_workers, prefetch = "auto", "auto"

    workers, depth = frame_source.decode_plan(Args, on_cpu=False)  # the model on an accelerator: the CPUs decode
    assert depth == workers == frame_source.default_decode_workers()
    assert frame_source.decode_plan(Args, on_cpu=True) == (0, 1)  # the model on the CPU: decode-only processes, one ahead
    Args.decode_workers = 20  # prefetch=auto follows the workers, up to the documented cap
    assert frame_source.decode_plan(Args, on_cpu=False) == (20, frame_source.MAX_PREFETCH)
    Args.decode_workers = 0
    assert frame_source.decode_plan(Args) == (0, 1)  # today's path: one video ahead in a thread
    Args.prefetch = 0
    assert frame_source.decode_plan(Args) == (0, 0)


def test_decode_model_args_are_checked():
    from lmms_eval_plugin.model_args import ModelArgError, parse_model_args

    assert parse_model_args(decode_workers="3", prefetch="5").decode_workers == 3
    for bad in ({"decode_workers": "-1"}, {"prefetch": "17"}, {"prefetch": "-1"}):
        with pytest.raises(ModelArgError):
            parse_model_args(**bad)


def test_auto_steps_back_to_in_process_when_shared_memory_is_small(monkeypatch):
    """Docker's default /dev/shm (64 MB) cannot carry one 256-frame video's output."""
    class Args:
        decode_workers, prefetch = "auto", "auto"

    monkeypatch.setattr(frame_source, "shm_free_bytes", lambda: 64 * 2**20)
    assert frame_source.decode_plan(Args) == (0, 1)
    Args.decode_workers = 2  # asked for explicitly: kept
    assert frame_source.decode_plan(Args)[0] == 2
    monkeypatch.setattr(frame_source, "shm_free_bytes", lambda: 32e9)
    Args.decode_workers = "auto"
    assert frame_source.decode_plan(Args, on_cpu=False)[0] == frame_source.default_decode_workers()


def test_a_worker_counts_a_zombie_owner_as_gone():
    """A killed run stays a zombie until its parent reaps it, and a parent reading the run's
    output to EOF (subprocess.run) reaps it only once the workers, which hold that output
    too, have left: they must see the zombie as gone, or both wait forever."""
    import subprocess
    import sys

    from lmms_eval_plugin.engine.decode_workers import _owner_alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert _owner_alive(child.pid)
        child.kill()
        deadline = time.monotonic() + 10
        while _owner_alive(child.pid) and time.monotonic() < deadline:  # not reaped: a zombie
            time.sleep(0.05)
        assert not _owner_alive(child.pid)
        assert child.poll() is not None  # it was still there to reap: the check saw a zombie, not a missing pid
    finally:
        child.kill()
        child.wait()


def test_a_run_that_dies_with_workers_up_does_not_hold_its_output_open(tmp_path):
    """The kill-and-resume case: a run ends by os._exit while its workers are busy; the
    caller reading its output to EOF gets it back promptly (the workers leave with it)."""
    import subprocess
    import sys

    script = tmp_path / "dies.py"
    script.write_text(
        "import os, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from lmms_eval_plugin.engine.decode_workers import _context, _init_worker\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(2, mp_context=_context('numpy'), initializer=_init_worker, initargs=(None, None, 16, os.getpid()))\n"
        "    print(pool.submit(os.getpid).result(), flush=True)\n"
        "    pool.submit(time.sleep, 60)\n"
        "    time.sleep(0.5)\n"
        "    os._exit(86)\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 86 and done.stdout.strip().isdigit()
    assert time.monotonic() - started < 30  # the busy worker did not finish its 60 s
