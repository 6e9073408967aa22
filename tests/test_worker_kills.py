"""A decode worker may die at any moment: SIGKILLed at 20 different moments of a run (before
and while the look-ahead is submitted, while the model waits for a video, while it computes,
between takes), the run completes and every video's output equals a clean pass's. Also: a
video whose parts disagree is read again whole with the sequential reader; decode_workers=0
hands back exactly the frames an in-process decode gives; the deadline's default scales."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest
import torch

from lmms_eval_plugin.engine import deadline
from lmms_eval_plugin.engine.decode_workers import SAFE_READER, PartsDisagree, VideoJob, WorkerPrefetcher, preprocess
from lmms_eval_plugin.engine.frames import FramePlan, SampledVideo
from lmms_eval_plugin.engine.scheduling import run_grouped
from lmms_eval_plugin.engine.video import load_video
from video_fixtures import write_noise_video

PLAN = FramePlan(8)
VISION_BATCH = 4  # 8 frames: two parts of one processor chunk each
MOMENTS = 20


@pytest.fixture(scope="module")
def processor(tiny_checkpoints):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_checkpoints["llava_onevision"]).video_processor


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("kills")
    sizes = [(320, 240, 90), (96, 64, 16), (128, 96, 20), (64, 48, 12)]  # the first one takes a while: the model waits
    return [str(write_noise_video(root / f"k{i}.mp4", seed=i, size=(w, h), n_frames=n)) for i, (w, h, n) in enumerate(sizes)]


class KillAt(WorkerPrefetcher):
    """Counts the run's moments (each submission to the pool, before and after ahead(), before
    and after take()) and SIGKILLs a worker at moment `at`: right away, or `delay` s later
    from another thread (the main process is then waiting, or computing). A moment with no
    worker alive yet moves the kill to the next one. At a submission the kill waits until the
    pool knows it is broken, so that the submission itself meets a broken pool."""

    def __init__(self, *args, at: int | None = None, delay: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.at, self.delay, self.moments, self.killed, self.pids, self.names = at, delay, 0, [], set(), []
        self._killer = None

    def _live(self) -> list[int]:
        pool = self._pool
        pids = [p.pid for p in (pool._processes or {}).values() if p.is_alive()] if pool is not None and pool._processes else []
        self.pids.update(pids)
        return pids

    def _moment(self, name: str) -> None:
        self.moments += 1
        self.names.append(name)
        self._live()
        if self.at is None or self.moments < self.at or self.killed:
            return
        if self.delay:
            if self._killer is None:
                self._killer = threading.Timer(self.delay, self._kill, args=(name,))
                self._killer.start()
        elif not self._kill(name):
            self.at += 1

    def _kill(self, name: str) -> bool:
        pids = self._live()
        if not pids:
            self._killer, self.at = None, self.moments + 1  # try again at the next moment
            return False
        pool = self._pool
        os.kill(pids[0], signal.SIGKILL)
        self.killed.append(name)
        if name == "submit":
            end = time.monotonic() + 10
            while not pool._broken and time.monotonic() < end:
                time.sleep(0.01)
        return True

    def _call(self, fn, *args):
        self._moment("submit")
        return super()._call(fn, *args)

    def ahead(self, jobs, keep=None):
        self._moment("ahead")
        super().ahead(jobs, keep)
        self._moment("ahead done")

    def take(self, key, args):
        self._moment("take")
        video = super().take(key, args)
        self._moment("taken")
        return video

    def close(self):
        if self._killer is not None:
            self._killer.join()
        super().close()


def _run(processor, videos, **kill) -> tuple[dict, KillAt]:
    """Two questions per video, grouped as the model asks them; a video's second question is
    a cache hit (not taken again). Returns each video's (indices, total, pixels)."""
    jobs = [(v, PLAN) for v in videos for _ in range(2)]
    out = {}

    def answer(index, _continues):
        job = jobs[index]
        if job[0] not in out:
            video = prefetcher.take(job, job)
            out[job[0]] = (video.indices, video.total_frames, video.pixels)
        time.sleep(0.02)  # the model computing

    with KillAt(2, 2, processor, None, VISION_BATCH, timeout=120, **kill) as prefetcher:
        run_grouped(jobs, answer, prefetcher, cached=lambda job: job[0] in out)
    return out, prefetcher


def test_a_worker_killed_at_any_of_20_moments_costs_nothing_but_a_retry(processor, videos):
    clean, counted = _run(processor, videos)
    assert counted.restarts == 0 and len(clean) == len(videos)
    # each kind of moment early and late in the run, the kill right then and 0.15 s later
    kinds = sorted(set(counted.names))
    moments = sorted({at for kind in kinds for at in _early_and_late([i + 1 for i, n in enumerate(counted.names) if n == kind])})
    runs = [(at, delay) for at in moments for delay in (0.0, 0.15)][:MOMENTS]
    assert len(runs) == MOMENTS
    seen = set()
    for at, delay in runs:
        out, prefetcher = _run(processor, videos, at=at, delay=delay)
        assert prefetcher.killed, (at, delay)
        seen.add(prefetcher.killed[0])
        assert out.keys() == clean.keys()
        for video, (indices, total, pixels) in clean.items():
            assert out[video][:2] == (indices, total), (at, delay, video)
            assert out[video][2].equal(pixels), (at, delay, video)
        assert not [pid for pid in prefetcher.pids if _alive(pid)], (at, delay)  # every worker of every pool reaped
    assert {"submit", "ahead", "take", "taken"} <= seen, seen


def _early_and_late(moments: list[int]) -> list[int]:
    return [moments[len(moments) // 4], moments[(3 * len(moments)) // 4]]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _part(video: SampledVideo) -> Future:
    future = Future()
    future.set_result(video)
    return future


def test_parts_that_disagree_are_read_again_whole_with_the_sequential_reader(processor, videos):
    path = videos[1]
    fake = lambda backend, total: SampledVideo(np.empty((0,)), [0, 5], total, 10.0, 8, backend, pixels=torch.zeros(1))  # noqa: E731
    for parts in ([fake("pyav_sparse", 16), fake("decord", 16)], [fake("pyav_sparse", 16), fake("pyav_sparse", 17)]):
        job = VideoJob(lambda *a: None, path, PLAN, 2)
        job.futures = [_part(p) for p in parts]
        with pytest.raises(PartsDisagree):
            job.result(1)

    class Disagreeing(WorkerPrefetcher):  # the first read of the video comes back from two readers
        def _job(self, args, reader=None, parts=None):
            if reader is None:
                job = VideoJob(lambda *a: None, *args, 2)
                job.futures = [_part(fake("pyav_sparse", 16)), _part(fake("decord", 16))]
                return job
            self.forced = (reader, parts)
            return super()._job(args, reader, parts)

    with Disagreeing(2, 0, processor, None, VISION_BATCH, timeout=120) as prefetcher:
        video = prefetcher.take((path, PLAN), (path, PLAN))
    assert prefetcher.forced == (SAFE_READER, 1)
    truth = load_video(path, PLAN, reader="sequential")  # the oracle: decoded and preprocessed here
    assert video.backend == truth.backend and video.indices == truth.indices and video.total_frames == truth.total_frames
    assert video.pixels.equal(preprocess(processor, truth.frames, VISION_BATCH))


@pytest.mark.exclusive  # asserts on every /dev/shm segment made while it runs: runs alone
@pytest.mark.parametrize("via_shm", [True, False])
def test_decode_workers_0_hands_back_the_in_process_frames(processor, videos, via_shm):
    before = set(os.listdir("/dev/shm"))
    with WorkerPrefetcher(2, 1, processor, None, VISION_BATCH, preprocess=False, frames_via_shm=via_shm) as prefetcher:
        for path in videos[:2]:
            video = prefetcher.take((path, PLAN), (path, PLAN))
            here = load_video(path, PLAN)
            assert video.pixels is None and isinstance(video.frames, np.ndarray)
            assert np.array_equal(video.frames, here.frames) and video.indices == here.indices and video.backend == here.backend
    assert not {name for name in set(os.listdir("/dev/shm")) - before if name.startswith("psm_")}  # every segment removed


def test_the_default_deadline_scales_with_duration_and_frames(videos):
    floor = deadline.MINIMUM_S
    assert deadline.decode_deadline_s(1, 8) == floor  # short clips: the floor
    assert deadline.decode_deadline_s(600, 32) > deadline.decode_deadline_s(300, 32) > floor
    assert deadline.decode_deadline_s(600, 512) > deadline.decode_deadline_s(600, 32)
    assert deadline.decode_deadline_s(None, 32) == deadline.decode_deadline_s(deadline.UNKNOWN_DURATION_S, 32)
    # a measured worst case it must leave room for: FFmpeg's sequential VP9 720p decode took
    # 25.2 s of CPU for 120 s of video (docs/bench/decode/decode.md)
    assert deadline.decode_deadline_s(120, 512) >= 3 * (25.2 + 14.3)
    assert deadline.video_duration_s(videos[0]) == pytest.approx(9.0, abs=0.2)  # 90 frames at 10 fps
    assert deadline.deadline_for(videos[0], PLAN, 7.5) == 7.5
    assert deadline.deadline_for(videos[0], PLAN) == floor
    assert deadline.planned_frames(FramePlan(None, fps=2.0, max_frames=64), 100.0) == 64
