"""Decode and preprocess the next videos in worker processes (`decode_workers=N`).

While the model works on one video, worker processes decode the next videos of the grouped
order, sample their frames and run the checkpoint's own video processor (resize,
normalise) on them, chunk by chunk exactly as the in-process path does. The main process
only runs the vision tower and the language model. A worker returns the processor's
output (cast to the vision tower's dtype, as the in-process path casts it), never the
decoded frames, through shared memory (torch.multiprocessing's tensor reductions).

Why a process pool and not a DataLoader: the pipeline must drop videos it no longer needs
(their features were cached, their answers are in the resume journal), fail one video
without failing the iterator, and retry a video whose worker died; DataLoader's iterator
does none of these (a killed worker ends the whole iteration). concurrent.futures'
ProcessPoolExecutor gives per-video futures, cancellation, and detects a killed worker
(BrokenProcessPool) instead of hanging.

Each video is split into parts (two with two or more workers; whole processor chunks of
`vision_batch` frames, video.part_slice), so the video the model needs next is decoded by
two workers at once, and the parts join to exactly the whole video's output.

Memory held: at most `depth` + 1 videos (the one needed now and `depth` ahead) are
submitted or finished and not yet taken; each is its processor output (frames x 3 x S x S
in the vision dtype), plus, while the parts are joined, one more copy of the video taken.
A worker decodes `vision_batch` frames at a time (pyav_sparse, decord) and preprocesses
each chunk before it decodes the next, so it holds one chunk at full resolution (the PyAV
fallback decodes its part first) (README, "Decode workers").
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Hashable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import torch
import torch.multiprocessing  # noqa: F401  registers shared-memory tensor pickling for the pool's queues

from lmms_eval_plugin.engine.video import FramePlan, SampledVideo, VideoError, load_video

RETRIES = 1  # a video whose worker died is decoded once more in a fresh pool, then failed
# Parts a video is split into: two halve the wait for the video needed now; each part reads
# the file's packet index itself (a demux pass, ~1.5 GB/s), so more would cost more reading
# than they save once the look-ahead is full.
MAX_PARTS = 2
WORKER_NICENESS = 10
OWNER_POLL_S = 0.5  # how often a worker checks that the process it works for is alive

_worker: dict = {}  # inside a worker: the video processor, dtype and chunk size


def _init_worker(video_processor, dtype: torch.dtype | None, vision_batch: int, owner_pid: int) -> None:
    torch.set_num_threads(1)  # one core per worker: N workers use N cores, never N x all of them
    # the look-ahead only has to stay ahead: where the model itself runs on the CPU, its work
    # (the critical path once a video's frames are in) goes first
    os.nice(WORKER_NICENESS)
    _worker.update(processor=video_processor, dtype=dtype, vision_batch=vision_batch)
    threading.Thread(target=_exit_with_owner, args=(owner_pid,), daemon=True, name="lvu_owner_watch").start()


def _exit_with_owner(owner_pid: int) -> None:
    """A worker's parent is the fork server, not the process it decodes for: if that process
    is killed (SIGKILL, os._exit), nothing tells the pool, and the worker (with the fork
    server and resource tracker it keeps alive) would live on holding the run's stdout and
    stderr open, so a caller reading them to EOF waits forever. So it leaves with its owner."""
    while _owner_alive(owner_pid):
        time.sleep(OWNER_POLL_S)
    os._exit(0)


def _owner_alive(pid: int) -> bool:
    """Alive and not a zombie: a killed process stays a zombie until its parent reaps it,
    and a parent that first reads the child's output to EOF (subprocess.run) reaps it only
    after every holder of that output, these workers included, has closed it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:  # no procfs (not Linux): signal 0 tells existence only
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # the pid now belongs to another user's process: ours is gone
            return False
        return True


def _chunks(frames, size: int):
    if isinstance(frames, np.ndarray):
        return (frames[start : start + size] for start in range(0, len(frames), size))
    return frames  # already an iterator of chunks of `size` frames (video.load_video with chunk)


def preprocess(video_processor, frames, vision_batch: int, dtype: torch.dtype | None = None) -> torch.Tensor | None:
    """The processor's pixel values for all frames, `vision_batch` frames per call as
    visual_encoding.encode_video calls it, so each chunk is the same tensor. `frames`: one
    array, or an iterator of chunks of `vision_batch` frames (then only one chunk at full
    size is held at a time). None for no frames (a part of a video without any)."""
    out = []
    for chunk in _chunks(frames, vision_batch):
        if len(chunk):
            pixels = video_processor(videos=[chunk], return_tensors="pt", do_sample_frames=False)["pixel_values_videos"][0]
            out.append(pixels if dtype is None else pixels.to(dtype))
    return torch.cat(out) if out else None


def _decode_and_preprocess(path: str, plan: FramePlan, part: tuple[int, int]) -> SampledVideo:
    video = load_video(path, plan, chunk=_worker["vision_batch"], part=part)
    try:
        pixels = preprocess(_worker["processor"], video.frames, _worker["vision_batch"], _worker["dtype"])
    except Exception:  # the decoder failed past its first chunk: the whole-part path (next backends), as in-process
        video = load_video(path, plan, part=part)
        pixels = preprocess(_worker["processor"], video.frames, _worker["vision_batch"], _worker["dtype"])
    # the full-resolution frames stay here: only the processor's output crosses over
    return SampledVideo(np.empty((0,), np.uint8), video.indices, video.total_frames, video.avg_fps, video.requested,
                        video.backend, pixels=pixels)


class VideoJob:
    """One video as `parts` futures, one part of its frames each (video.part_slice), so that
    idle workers share the video the model needs next; joined in order, the parts' outputs
    are the whole video's (whole processor chunks each)."""

    def __init__(self, submit, path: str, plan: FramePlan, parts: int):
        self.futures = [submit(_decode_and_preprocess, path, plan, (k, parts)) for k in range(parts)]

    def cancel(self) -> None:
        for future in self.futures:
            future.cancel()

    def finished(self) -> bool:
        return all(f.done() and not f.cancelled() and f.exception() is None for f in self.futures)

    def result(self, timeout: float | None = None) -> SampledVideo:
        parts = [future.result(timeout) for future in self.futures]
        first = parts[0]
        pixels = [part.pixels for part in parts if part.pixels is not None]
        backends = dict.fromkeys(part.backend for part in parts if part.pixels is not None) or {first.backend: None}
        return SampledVideo(first.frames, first.indices, first.total_frames, first.avg_fps, first.requested, "+".join(backends),
                            pixels=torch.cat(pixels) if len(pixels) > 1 else (pixels[0] if pixels else None))


def start_server(video_processor) -> None:
    """Start the fork server now (it imports torch and the processor, ~3 s) so that this
    overlaps the model's loading instead of delaying the first video."""
    _context(type(video_processor).__module__)
    from multiprocessing import forkserver

    forkserver.ensure_running()


def _context(processor_module: str):
    """forkserver: workers fork from a clean server process started once per run, with this
    module and the processor's already imported, so a pool starts in well under a second;
    a plain fork of a process holding CUDA state or threads is unsafe, and spawn would
    import torch and transformers again in every worker of every pool."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, processor_module])
    return context


class WorkerPrefetcher:
    """The VideoPrefetcher interface (ahead / take / discard / close) over worker processes."""

    prepares_current = True  # the scheduler submits the video needed now first (scheduling.py)

    def __init__(self, workers: int, depth: int, video_processor, dtype: torch.dtype | None, vision_batch: int):
        self.workers = max(1, int(workers))
        self.depth = max(0, int(depth))
        self._init = (video_processor, dtype, vision_batch, os.getpid())
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Hashable, tuple[VideoJob, tuple]] = {}  # key -> (its job, its load args)
        self._ahead: set[Hashable] = set()  # keys submitted before they were the current video
        self.prefetched = 0  # videos served from a look-ahead decode
        self.restarts = 0  # pools replaced after a worker died
        self.last_wait_s = 0.0  # how long the last take() waited for its video

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=_context(type(self._init[0]).__module__),
                                             initializer=_init_worker, initargs=self._init)
        return self._pool

    def _submit(self, path: str, plan: FramePlan) -> VideoJob:
        return VideoJob(self._executor().submit, path, plan, min(self.workers, MAX_PARTS))

    def ahead(self, jobs: list[tuple[Hashable, tuple]], keep: Hashable = None) -> None:
        wanted = {key for key, _ in jobs}
        for key in [k for k in self._futures if k not in wanted and k != keep]:
            self.discard(key)
        for key, args in jobs:
            if len(self._futures) >= self.depth + 1:  # the current video and `depth` ahead
                break
            if key not in self._futures:
                self._futures[key] = (self._submit(*args), args)
                if key != keep:
                    self._ahead.add(key)

    def take(self, key: Hashable, args: tuple) -> SampledVideo:
        """The video of `key`, preprocessed: the look-ahead result when there is one, else
        decoded now in a worker. A video error is re-raised as the worker raised it."""
        started = time.monotonic()
        job, _ = self._futures.pop(key, (None, None))
        if job is None:
            job = self._submit(*args)
        if key in self._ahead:
            self._ahead.discard(key)
            self.prefetched += 1
        try:
            for attempt in range(RETRIES + 1):
                try:
                    return job.result()
                except BrokenProcessPool:
                    self._restart()
                    if attempt == RETRIES:
                        raise VideoError(args[0], f"its decode worker process died {RETRIES + 1} times (killed, or out of memory)") from None
                    job = self._submit(*args)
        finally:
            self.last_wait_s = time.monotonic() - started

    def _restart(self) -> None:
        """A dead worker breaks the whole pool: start a fresh one; the other look-ahead
        videos are submitted again to it."""
        broken = list(self._futures.items())
        self._futures.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self.restarts += 1
        for key, (job, args) in broken:
            self._futures[key] = (job, args) if job.finished() else (self._submit(*args), args)

    def discard(self, key: Hashable) -> None:
        self._ahead.discard(key)
        job, _ = self._futures.pop(key, (None, None))
        if job is not None:
            job.cancel()

    def close(self) -> None:
        for job, _ in self._futures.values():
            job.cancel()
        self._futures.clear()
        self._ahead.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
