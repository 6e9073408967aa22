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

Every decode runs here, `decode_workers=0` included (then the workers only decode and hand
the frames back; the processor stays in the main process), because only a process can be
stopped: a decoder stuck in native code holds its thread for good. The model waits for a
video at most its deadline (deadline.py); past it the workers are killed, the pool rebuilt,
the video read once more with the sequential reader, then failed (WorkerPrefetcher.take).

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
import time
from collections.abc import Hashable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np
import torch
import torch.multiprocessing  # noqa: F401  registers shared-memory tensor pickling for the pool's queues
from loguru import logger

from lmms_eval_plugin.engine.deadline import AUTO, deadline_for
from lmms_eval_plugin.engine.decode_process import (  # noqa: F401  _exit_with_owner, _owner_alive: re-exported for the tests
    _exit_with_owner,
    _owner_alive,
    decode_frames,
    init_process,
    light_context,
    process_cache,
    processed_as,
)
from lmms_eval_plugin.engine.frames import FramePlan, SampledVideo, VideoError
from lmms_eval_plugin.engine.processed_frames import finished, resized
from lmms_eval_plugin.engine.video import load_video, processed_plan_key

RETRIES = 1  # a video in flight when its pool broke is decoded once more in a fresh pool, then failed
# Parts a video is split into: two halve the wait for the video needed now; each part reads
# the file's packet index itself (a demux pass, ~1.5 GB/s), so more would cost more reading
# than they save once the look-ahead is full.
MAX_PARTS = 2
SAFE_READER = "sequential"  # FFmpeg-order decode: the reader a hung or inconsistent video is read again with

_worker: dict = {}  # inside a worker: the video processor, dtype and chunk size


def _init_worker(video_processor, dtype: torch.dtype | None, vision_batch: int, owner_pid: int, frame_cache: tuple | None = None) -> None:
    torch.set_num_threads(1)  # one core per worker: N workers use N cores, never N x all of them
    # the look-ahead only has to stay ahead: where the model itself runs on the CPU, its work
    # (the critical path once a video's frames are in) goes first
    init_process(owner_pid, frame_cache=frame_cache)
    _worker.update(processor=video_processor, dtype=dtype, vision_batch=vision_batch)


def _chunks(frames, size: int):
    if isinstance(frames, np.ndarray):
        return (frames[start : start + size] for start in range(0, len(frames), size))
    return frames  # already an iterator of chunks of `size` frames (video.load_video with chunk)


def preprocess(video_processor, frames, vision_batch: int, dtype: torch.dtype | None = None, video: SampledVideo | None = None,
               cache=None) -> torch.Tensor | None:
    """The processor's pixel values for all frames, `vision_batch` frames per call as
    visual_encoding.encode_video calls it, so each chunk is the same tensor. `frames`: one
    array, or an iterator of chunks of `vision_batch` frames (then only one chunk at full
    size is held at a time). None for no frames (a part of a video without any). With
    frame_cache_stage=processed, `video` says the frames are already resized (a hit), or
    where in `cache` their resized frames go as they pass (processed_frames.py)."""
    out = []
    resized_already = video is not None and video.resized
    store = None if resized_already or video is None or cache is None else video.store_key
    pos = video.store_start if store else 0
    for chunk in _chunks(frames, vision_batch):
        if not len(chunk):
            continue
        if resized_already:
            pixels = finished(video_processor, chunk)
        elif store:
            small = resized(video_processor, chunk)
            cache.store(store, pos, small)
            pos += len(small)
            pixels = finished(video_processor, small)
        else:
            pixels = video_processor(videos=[chunk], return_tensors="pt", do_sample_frames=False)["pixel_values_videos"][0]
        out.append(pixels if dtype is None else pixels.to(dtype))
    if store and pos > video.store_start:
        cache.store_meta(store, video.indices, video.total_frames, video.avg_fps, video.backend, tuple(small.shape[1:]))
        cache.store_decode_s(store, video.store_start, pos, video.decode_s)  # complete now: a lazy decode ran as the chunks passed
    return torch.cat(out) if out else None


def _load(path: str, plan: FramePlan, chunk: int | None, part: tuple[int, int], reader: str) -> SampledVideo:
    return load_video(path, plan, chunk=chunk, part=part, reader=reader, cache=process_cache(), processed_as=processed_as())


def _decode_and_preprocess(path: str, plan: FramePlan, part: tuple[int, int], reader: str = "auto") -> SampledVideo:
    video = _load(path, plan, _worker["vision_batch"], part, reader)
    try:
        pixels = preprocess(_worker["processor"], video.frames, _worker["vision_batch"], _worker["dtype"], video, process_cache())
    except Exception:  # the decoder failed past its first chunk: the whole-part path (next backends), as in-process
        video = _load(path, plan, None, part, reader)
        pixels = preprocess(_worker["processor"], video.frames, _worker["vision_batch"], _worker["dtype"], video, process_cache())
    # the full-resolution frames stay here: only the processor's output crosses over
    return SampledVideo(np.empty((0,), np.uint8), video.indices, video.total_frames, video.avg_fps, video.requested,
                        video.backend, pixels=pixels, frame_cache=video.frame_cache, decode_s=video.decode_s)


def _joined_cache_state(states: list[str]) -> str:
    """One video's frame-cache state from its parts': a hit only when no part decoded."""
    if all(state == "hit" for state in states):
        return "hit"
    return next((state for state in ("stored", "miss") if state in states), states[0])


class PartsDisagree(Exception):
    """A video's parts came from different readers, or disagree on its frame count or
    indices: no part can be trusted to be the same video's frames as the other."""


class VideoJob:
    """One video as `parts` futures, one part of its frames each (frames.part_slice), so
    that idle workers share the video the model needs next; joined in order, the parts'
    outputs are the whole video's (whole processor chunks each). `reader` is passed to every
    part: one video, one reader."""

    def __init__(self, submit, path: str, plan: FramePlan, parts: int, reader: str = "auto", work=None):
        self.parts, self.reader = parts, reader
        self.futures = [submit(work or _decode_and_preprocess, path, plan, (k, parts), reader) for k in range(parts)]

    def cancel(self) -> bool:
        """Cancel what has not started; False when a part is still running."""
        return all(future.cancel() or future.done() for future in self.futures)

    def settled(self) -> bool:
        """Every part done in a pool that did not break under it (a result or its own error):
        nothing to decode again."""
        return all(f.done() and not f.cancelled() and not isinstance(f.exception(), BrokenProcessPool) for f in self.futures)

    def ran(self) -> bool:
        """At least one part reached the pool (a part refused at submission never ran)."""
        return any(not (f.done() and isinstance(f.exception(), NotSubmitted)) for f in self.futures)

    def result(self, timeout: float | None = None) -> SampledVideo:
        """The joined video; waits at most `timeout` s for all parts together (TimeoutError)."""
        end = None if timeout is None else time.monotonic() + timeout
        outcomes = []
        for future in self.futures:
            remaining = None if end is None else max(0.0, end - time.monotonic())
            try:
                outcomes.append(future.result(remaining))
            except VideoError as exc:
                outcomes.append(exc)
        failed = [o for o in outcomes if isinstance(o, VideoError)]
        if failed and len(failed) < len(outcomes):
            raise PartsDisagree(f"{len(failed)} of {len(outcomes)} parts failed ({failed[0].reason})")
        if failed:
            raise failed[0]
        first = outcomes[0]
        for part in outcomes[1:]:
            if (part.backend, part.total_frames, part.indices) != (first.backend, first.total_frames, first.indices):
                raise PartsDisagree(f"parts read by {first.backend} and {part.backend}: {first.total_frames} vs {part.total_frames} frames")
        frames = [part.frames for part in outcomes if len(part.frames)]  # decode-only parts (decode_process.py)
        pixels = [part.pixels for part in outcomes if part.pixels is not None]
        return SampledVideo(frames[0] if len(frames) == 1 else (np.concatenate(frames) if frames else first.frames),
                            first.indices, first.total_frames, first.avg_fps, first.requested, first.backend,
                            pixels=torch.cat(pixels) if len(pixels) > 1 else (pixels[0] if pixels else None),
                            frame_cache=_joined_cache_state([part.frame_cache for part in outcomes]),
                            decode_s=sum(part.decode_s for part in outcomes),
                            # decode-only parts (one per video) hand their frames on as they are
                            resized=first.resized, store_key=first.store_key, store_start=first.store_start)


class NotSubmitted(BrokenProcessPool):
    """The pool was already broken when a part was submitted: the part never ran."""


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


@dataclass
class _InFlight:
    """A video submitted to the pool, and what its retries have used up."""

    job: VideoJob
    args: tuple  # (path, plan)
    breaks: int = 0  # pool breaks it was in flight for (a worker died)
    timeouts: int = 0  # deadlines it ran past


class WorkerPrefetcher:
    """The VideoPrefetcher interface (ahead / take / discard / close) over worker processes.

    Every wait for a video is bounded (`timeout`: the decode_timeout_s model arg, seconds or
    auto, deadline.py): past it the pool's processes are killed, the pool rebuilt, the video
    decoded once more with the sequential reader, then failed. A pool that breaks (a worker
    killed, out of memory) whether the main process waits, submits or computes is rebuilt
    and only the videos in flight are decoded again, each at most RETRIES more times.

    `preprocess=False` (decode_workers=0): the workers only decode, one whole video each,
    and hand the frames back; the video processor runs in the main process."""

    prepares_current = True  # the scheduler submits the video needed now first (scheduling.py)

    def __init__(self, workers: int, depth: int, video_processor, dtype: torch.dtype | None, vision_batch: int,
                 timeout: float | str = AUTO, preprocess: bool = True, reader: str = "auto", frames_via_shm: bool = True,
                 frame_cache: tuple | None = None):
        self.workers = max(1, int(workers))
        self.reader = reader  # the `decoder` model arg; SAFE_READER for retries
        self.depth = max(0, int(depth))
        self.timeout = timeout
        self.parts = min(self.workers, MAX_PARTS) if preprocess else 1
        self._module = type(video_processor).__module__
        self.preprocess = preprocess
        self._frames_via_shm = frames_via_shm  # decode only: frames back through /dev/shm, else the pipe
        self._frame_cache = frame_cache  # (folder, cap GB, processed key or None) of the frame_cache model args, or None
        self._cache_here = None  # the main process's FrameCache, to store processed frames made here (decode only)
        self._init = (video_processor, dtype, vision_batch, os.getpid(), frame_cache)
        self.last_frame_cache = "off"  # the frame-cache state of the last video taken
        self.last_decode_s = 0.0  # its decode seconds (on a frame-cache hit: the stored decode's, saved)
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Hashable, _InFlight] = {}
        self._ahead: set[Hashable] = set()  # keys submitted before they were the current video
        self._deadlines: dict[tuple, float] = {}
        self.prefetched = 0  # videos served from a look-ahead decode
        self.restarts = 0  # pools replaced after a worker died or a decode ran past its deadline
        self.last_wait_s = 0.0  # how long the last take() waited for its video

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            if self.preprocess:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=_context(self._module),
                                                 initializer=_init_worker, initargs=self._init)
            else:  # decode only: a torch-free process (decode_process.py)
                self._pool = ProcessPoolExecutor(self.workers, mp_context=light_context(), initializer=init_process,
                                                 initargs=(os.getpid(), self._frames_via_shm, self._frame_cache))
        return self._pool

    def _call(self, fn, *args) -> Future:
        """Submit to the pool; a pool that broke since (a worker died while the main process
        computed) refuses with BrokenProcessPool: that part comes back as a failed future,
        dealt with where the video is taken, like a break seen while waiting."""
        try:
            return self._executor().submit(fn, *args)
        except BrokenProcessPool as exc:
            future: Future = Future()
            future.set_exception(NotSubmitted(str(exc)))
            return future

    def _job(self, args: tuple, reader: str | None = None, parts: int | None = None) -> VideoJob:
        return VideoJob(self._call, *args, self.parts if parts is None else parts, reader or self.reader,
                        None if self.preprocess else decode_frames)

    def deadline_s(self, args: tuple) -> float:
        key = tuple(args)
        if key not in self._deadlines:
            self._deadlines[key] = deadline_for(*args, self.timeout)
        return self._deadlines[key]

    def ahead(self, jobs: list[tuple[Hashable, tuple]], keep: Hashable = None) -> None:
        wanted = {key for key, _ in jobs}
        for key in [k for k in self._futures if k not in wanted and k != keep]:
            self.discard(key)
        for key, args in jobs:
            if len(self._futures) >= self.depth + 1:  # the current video and `depth` ahead
                break
            if key not in self._futures:
                self._futures[key] = _InFlight(self._job(args), args)
                if key != keep:
                    self._ahead.add(key)

    def take(self, key: Hashable, args: tuple) -> SampledVideo:
        """The video of `key`: the look-ahead result when there is one, else decoded now in a
        worker. A video error is re-raised as the worker raised it; a decode past its
        deadline, or a video whose worker keeps dying, is raised as a VideoError too."""
        video = self._take(key, args)
        if video.pixels is None and (video.resized or video.store_key):
            # frame_cache_stage=processed with decode-only processes (they have no processor):
            # the processor's two steps run here, where the processor is, after the wait
            cache = self._main_cache()
            # the key again here, so that meta.json names its source; a file changed since its decode stores nothing
            if video.store_key and cache.key(args[0], processed_plan_key(args[1], self.reader, self._frame_cache[2])) != video.store_key:
                video.store_key = None
            video.pixels = preprocess(self._init[0], video.frames, self._init[2], self._init[1], video, cache)
            video.frames = video.frames[:0]
        return video

    def _main_cache(self):
        if self._cache_here is None:
            from lmms_eval_plugin.engine.frame_cache import FrameCache

            self._cache_here = FrameCache(*self._frame_cache[:2])
        return self._cache_here

    def _take(self, key: Hashable, args: tuple) -> SampledVideo:
        started = time.monotonic()
        entry = self._futures.pop(key, None) or _InFlight(self._job(args), args)
        if key in self._ahead:
            self._ahead.discard(key)
            self.prefetched += 1
        path, deadline = args[0], self.deadline_s(args)
        try:
            waiting_since = time.monotonic()
            while True:
                try:
                    video = entry.job.result(max(0.0, waiting_since + deadline - time.monotonic()))
                    self.last_frame_cache = video.frame_cache
                    self.last_decode_s = video.decode_s
                    return video
                except PartsDisagree as exc:  # one video, one reader: read it again whole, with the safe reader
                    logger.warning(f"lvu_ext: {path}: its parts disagree ({exc}); reading it again whole with reader={SAFE_READER}")
                    entry.job = self._job(args, SAFE_READER, parts=1)
                except BrokenProcessPool:
                    if entry.breaks <= RETRIES:  # else a rebuild already gave up on it: the fresh pool stays
                        self._rebuild(charged=entry if entry.job.ran() else None)
                    if entry.breaks > RETRIES:
                        raise VideoError(path, f"its decode worker process died {RETRIES + 1} times (killed, or out of memory)") from None
                    logger.warning(f"lvu_ext: a decode worker died (killed, or out of memory) while {path} was decoded; "
                                   "decoding the videos in flight again in a fresh pool")
                    entry.job = self._job(args, entry.job.reader, entry.job.parts)
                except TimeoutError:
                    entry.timeouts += 1
                    self._rebuild(charged=None, kill=True)  # its worker is stuck: only killing it frees it
                    if entry.timeouts > RETRIES:
                        raise VideoError(path, f"decode did not finish in {deadline:.0f} s") from None
                    logger.warning(f"lvu_ext: {path}: decode did not finish in {deadline:.0f} s (decode_timeout_s); its worker was "
                                   f"killed; reading it once more with reader={SAFE_READER}")
                    entry.job = self._job(args, SAFE_READER, parts=1)
                waiting_since = time.monotonic()
        finally:
            self.last_wait_s = time.monotonic() - started

    def _rebuild(self, charged: _InFlight | None, kill: bool = False) -> None:
        """Replace a broken (or, `kill`, a stuck) pool with a fresh one and submit again the
        look-ahead videos that had not finished. A break is charged to every video that was
        in flight (`charged`, the one taken, included; the pool does not say which worker held
        which video); one past RETRIES keeps its failed futures and fails when taken. A kill
        for a deadline charges no one else: the stuck video is known."""
        in_flight = list(self._futures.items())
        self._stop_pool(kill=kill)
        self.restarts += 1
        if charged is not None:
            charged.breaks += 1
        for _, entry in in_flight:
            if entry.job.settled():
                continue
            if not kill and entry.job.ran():
                entry.breaks += 1
            if entry.breaks <= RETRIES:
                entry.job = self._job(entry.args, entry.job.reader, entry.job.parts)

    def _stop_pool(self, kill: bool) -> None:
        """Shut the pool down; with `kill`, SIGKILL its processes first. Why the private
        `_processes`: ProcessPoolExecutor has no way to stop a call that is running (cancel()
        only drops queued ones, and shutdown() waits for running ones, or with wait=False
        leaves a stuck worker running for good). Killing one worker breaks the pool; the
        executor's own thread then ends the others and reaps them, which shutdown(wait=True)
        waits for, so no process is left behind."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((pool._processes or {}).values())
        if kill:
            for process in processes:
                if process.is_alive():
                    process.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        for process in processes:
            process.join(timeout=10)

    def discard(self, key: Hashable) -> None:
        self._ahead.discard(key)
        entry = self._futures.pop(key, None)
        if entry is not None:
            entry.job.cancel()

    def close(self) -> None:
        """Cancel the look-ahead and kill the workers: a part still running (its video no
        longer asked for, maybe stuck) is not waited for, and a graceful shutdown can wait
        forever on a pool one of whose workers was just killed (the queue lock it held)."""
        for entry in self._futures.values():
            entry.job.cancel()
        self._futures.clear()
        self._ahead.clear()
        self._stop_pool(kill=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
