"""Decode a video in a process that can be killed, without torch (`decode_workers=0`).

A decoder stuck in native code holds its thread for good; only a process can be stopped. So
with decode_workers=0 the videos still decode in processes (decode_workers.WorkerPrefetcher,
`preprocess=False`), which hand the sampled frames back through the pool's pipe; the video
processor runs in the main process as it always did there. This module imports neither
torch nor transformers: its fork server starts in a fraction of a second and takes no CPU
from a model running on the same cores (a fork server preloading torch and the processor
took ~3 s of CPU, which made a short CPU run slower than decoding in a thread).

Also the owner watch every decode process runs (decode workers too).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import numpy as np

from lmms_eval_plugin.engine.frames import FramePlan, SampledVideo
from lmms_eval_plugin.engine.video import load_video

_process: dict = {"frames_via_shm": False}  # inside a decode process
WORKER_NICENESS = 10
OWNER_POLL_S = 0.5  # how often a worker checks that the process it works for is alive
LIGHT_PRELOAD = [__name__, "av"]  # what a decode-only fork server imports once


def init_process(owner_pid: int, frames_via_shm: bool = False, frame_cache: tuple | None = None) -> None:
    """`frames_via_shm`: hand frames back through a /dev/shm segment (a memcpy each way)
    instead of the pool's pipe (~2 s more for 128 frames of 720p); only where /dev/shm has
    room, since writing past its end kills the process (SIGBUS). `frame_cache`: (folder, cap
    in GB, processed key or None) of the `frame_cache` model args, one FrameCache per process
    (it warns once); the processed key (frame_cache_stage=processed) is the processor's
    processed_frames.processed_key, computed where the processor is."""
    _process["frames_via_shm"] = frames_via_shm
    _process["cache"] = None
    _process["processed_as"] = None
    if frame_cache:
        from lmms_eval_plugin.engine.frame_cache import FrameCache

        _process["cache"] = FrameCache(*frame_cache[:2])
        _process["processed_as"] = frame_cache[2] if len(frame_cache) > 2 else None
    # the look-ahead only has to stay ahead: where the model itself runs on the CPU, its work
    # (the critical path once a video's frames are in) goes first
    os.nice(WORKER_NICENESS)
    threading.Thread(target=_exit_with_owner, args=(owner_pid,), daemon=True, name="lvu_owner_watch").start()


def process_cache():
    """This decode process's frame cache, or None."""
    return _process.get("cache")


def processed_as() -> str | None:
    """The processed key of frame_cache_stage=processed in this decode process, or None."""
    return _process.get("processed_as")


def decode_frames(path: str, plan: FramePlan, part: tuple[int, int], reader: str = "auto") -> SampledVideo:
    """The sampled frames of one video (one array), as load_video returns them in process."""
    video = load_video(path, plan, part=part, reader=reader, cache=process_cache(), processed_as=processed_as())
    video.frames = np.ascontiguousarray(video.frames)
    if _process["frames_via_shm"] and video.frames.nbytes:
        video.frames = SharedFrames.put(video.frames)
    return video


class SharedFrames:
    """Frames in a /dev/shm segment, named in the pickle: unpickled in the main process, they
    are copied out and the segment removed at once. A segment whose process was killed
    before the main process got it is removed by multiprocessing's resource tracker, which
    the pool's processes share with the main process, at the latest when the run ends."""

    def __init__(self, name: str, shape: tuple, dtype: str):
        self.name, self.shape, self.dtype = name, shape, dtype

    @classmethod
    def put(cls, frames: np.ndarray) -> SharedFrames:
        from multiprocessing import shared_memory

        segment = shared_memory.SharedMemory(create=True, size=frames.nbytes)
        try:
            np.ndarray(frames.shape, frames.dtype, buffer=segment.buf)[...] = frames
            return cls(segment.name, frames.shape, frames.dtype.str)
        finally:
            segment.close()

    def __reduce__(self):
        return (_take_frames, (self.name, self.shape, self.dtype))


def _take_frames(name: str, shape: tuple, dtype: str) -> np.ndarray:
    from multiprocessing import shared_memory

    segment = shared_memory.SharedMemory(name=name)
    try:
        return np.ndarray(shape, np.dtype(dtype), buffer=segment.buf).copy()
    finally:
        segment.close()
        segment.unlink()


def light_context():
    """forkserver, preloading only this module and PyAV (see decode_workers._context for why
    a fork server). The preload list counts only before the server starts: the first pool of
    a process decides it, and a later worker imports what it lacks itself."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(LIGHT_PRELOAD)
    return context


def start_light_server() -> None:
    light_context()
    from multiprocessing import forkserver

    forkserver.ensure_running()


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
