"""The part of the check that runs in a worker process: read the header (probe.py), tell the
parent the run's deadline for this video, then decode the plan's frames with the run's
reader and time it. The parent kills the process when the deadline passes (run.py)."""

from __future__ import annotations

import itertools
import resource
import signal
import time
from dataclasses import dataclass

import numpy as np

from lmms_eval_plugin.check_videos.probe import probe
from lmms_eval_plugin.engine.deadline import deadline_for
from lmms_eval_plugin.engine.video import FramePlan, VideoError, load_video

CHUNK = 16  # frames held at once: a 512-frame 4K plan would not fit in memory whole
# --verify: a frame counts as wrong past this mean absolute difference (of 255). The same frame
# through another RGB conversion (decord's) differs by ~1; a shifted or corrupted one by far more.
VERIFY_TOLERANCE = 4.0


@dataclass(frozen=True)
class Job:
    path: str
    plan: FramePlan
    reader: str  # the `decoder` model arg: auto | sequential | decord
    timeout: float | str  # the `decode_timeout_s` model arg: seconds, or "auto"
    verify: bool = False  # --verify: read again with the reader and sequentially, and compare the frames
    cache_gb: float | None = None  # --frame-cache-gb: the cap of the --fill-cache folder


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process: the decoder's too
    return usage.ru_utime + usage.ru_stime


def _frames(video):
    """The sampled frames one by one, whether the reader gave one array or chunks."""
    return iter(video.frames) if hasattr(video.frames, "shape") else itertools.chain.from_iterable(video.frames)


_caches: dict = {}  # one FrameCache per folder in this worker: it warns once if the folder cannot be written


def _cache(folder: str | None, cap_gb: float | None):
    if folder is None:
        return None
    if folder not in _caches:
        from lmms_eval_plugin.engine.frame_cache import FrameCache

        _caches[folder] = FrameCache(folder, cap_gb)
    return _caches[folder]


def decode(job: Job, cache_dir: str | None = None) -> dict:
    """Decode `job` as a run would and say what came out. `cache_dir` (`--fill-cache`): the
    frames go into that frame cache as a run with `frame_cache=DIR` and the same plan and
    decoder stores them, so the run finds every video there (engine/frame_cache.py)."""
    wall, cpu = time.perf_counter(), _cpu_s()
    out: dict = {}
    try:
        video = load_video(job.path, job.plan, chunk=CHUNK, reader=job.reader, cache=_cache(cache_dir, job.cache_gb))
        out.update(backend=video.backend, total_frames=video.total_frames, avg_fps=video.avg_fps, requested=video.requested,
                   indices_planned=len(video.indices), frame_cache=video.frame_cache)
        out["frames_decoded"] = decoded = sum(1 for _ in _frames(video))
        if decoded != len(video.indices):
            out["error"] = f"the reader returned {decoded} frames for {len(video.indices)} planned indices"
    except VideoError as exc:
        out["error"] = exc.reason
    except Exception as exc:  # a reader bug is still a video the run would fail on
        out["error"] = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
    out["decode_s"], out["cpu_s"] = time.perf_counter() - wall, _cpu_s() - cpu
    return out


def verify(job: Job, backend: str) -> dict:
    """`--verify`: the reader's frames against FFmpeg's sequential decode (the definition of
    a frame, engine/frames.py), frame by frame; `error` says what differs."""
    start = time.perf_counter()
    video = load_video(job.path, job.plan, chunk=CHUNK, reader=job.reader)
    truth = load_video(job.path, job.plan, chunk=CHUNK, reader="sequential")
    out: dict = {"sequential_total_frames": truth.total_frames}
    if truth.total_frames != video.total_frames or list(truth.indices) != list(video.indices):
        out["error"] = (f"the {backend} reader counts {video.total_frames} frames, FFmpeg's sequential decode "
                        f"{truth.total_frames}: other frames than the video's would be sampled")
    else:
        wrong, worst = 0, 0.0
        for mine, true in zip(_frames(video), _frames(truth)):
            diff = float(np.abs(mine.astype(np.int16) - true.astype(np.int16)).mean()) if mine.shape == true.shape else 255.0
            worst = max(worst, diff)
            wrong += diff > VERIFY_TOLERANCE
        out["verify_max_mean_abs_diff"] = round(worst, 3)
        if wrong:
            out["error"] = (f"the {backend} reader's frames differ from FFmpeg's sequential decode at {wrong} of "
                            f"{len(video.indices)} sampled frames (mean abs difference up to {worst:.1f} of 255)")
    out["verify_s"] = time.perf_counter() - start
    return out


def _die_with_parent() -> None:
    # A worker stuck in a native decoder outlives a parent killed by SIGKILL unless the
    # kernel kills it too (Linux only; elsewhere the parent's own cleanup has to do).
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve(conn) -> None:
    """Worker loop: (job id, Job, cache dir) in; ("probe", id, header, deadline s), with
    --verify ("decoded", id, decode result), then ("done", id, result) out; None ends it."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it kills us
    conn.send("ready")
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent is gone
            return
        if message is None:
            return
        job_id, job, cache_dir = message
        header = probe(job.path)
        conn.send(("probe", job_id, header, deadline_for(job.path, job.plan, job.timeout)))
        result = decode(job, cache_dir)
        if job.verify and "error" not in result and result["backend"] != "pyav_sequential":
            conn.send(("decoded", job_id, result))  # the parent gives the comparison its own deadline
            try:
                result = {**result, **verify(job, result["backend"])}
            except Exception as exc:  # the reader read it once: a second failure is the comparison's
                result = {**result, "error": f"verification failed: {type(exc).__name__}: {str(exc).strip()[:300]}"}
        conn.send(("done", job_id, result))
