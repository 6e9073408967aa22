"""Where a request's frames come from, chosen by `decode_workers` and `prefetch`:

- `decode_workers=0,prefetch=0`: decoded and preprocessed in the main process, when asked;
- `decode_workers=0,prefetch=N`: the next N videos decoded in background threads
  (prefetch.py); the processor still runs in the main thread;
- `decode_workers=N` (the default, N from the CPU count): worker processes decode and
  preprocess the next `prefetch` videos (decode_workers.py).

It also keeps the run's totals: videos served from the look-ahead, seconds the model waited
for frames (`wait_s` per record), and the wall time of the request batches."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

import torch

from lmms_eval_plugin.engine.decode_workers import WorkerPrefetcher, start_server
from lmms_eval_plugin.engine.prefetch import VideoPrefetcher
from lmms_eval_plugin.engine.video import load_video

AUTO = "auto"
MAX_WORKERS_DEFAULT = 8  # README "Decode workers": ~8 s of CPU decode per 256-frame request against ~1 s of GPU
MAX_PREFETCH = 16  # the look-ahead cap the memory bound is documented for
# Workers hand their output over through /dev/shm; Docker's default is 64 MB, too small for
# one 256-frame OneVision video (226 MB in bf16), so `auto` steps back to in-process below this.
MIN_SHM_BYTES = 2e9


def shm_free_bytes() -> int | None:
    import shutil

    try:
        return shutil.disk_usage("/dev/shm").free
    except OSError:  # not Linux
        return None


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def local_processes() -> int:
    """Processes of this run on this machine (accelerate / torchrun set LOCAL_WORLD_SIZE)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def default_decode_workers(cpus: int | None = None, processes: int | None = None) -> int:
    """The machine's cores shared by its processes, at most MAX_WORKERS_DEFAULT each."""
    cpus = usable_cpus() if cpus is None else cpus
    processes = local_processes() if processes is None else processes
    return max(1, min(MAX_WORKERS_DEFAULT, cpus // processes))


def decode_plan(args) -> tuple[int, int]:
    """(decode workers, videos ahead) from the model args."""
    if args.decode_workers == AUTO:
        free = shm_free_bytes()
        workers = 0 if free is not None and free < MIN_SHM_BYTES else default_decode_workers()
    else:
        workers = int(args.decode_workers)
    depth = (workers if workers else 1) if args.prefetch == AUTO else int(args.prefetch)
    return workers, depth


class FrameSource:
    def __init__(self, args, video_processor):
        """Made before the model is loaded, so that the workers' fork server starts (imports
        torch and the processor, seconds) while the weights load; set `vision_dtype` once
        they have."""
        self.workers, self.depth = decode_plan(args)
        self._video_processor = video_processor
        self.vision_dtype = torch.float32
        self._vision_batch = args.vision_batch
        self.prefetched = 0
        self.waited_s = 0.0
        self.wall_s = 0.0
        from loguru import logger

        if self.workers:
            start_server(video_processor)
            logger.info(f"lvu_ext: {self.workers} decode worker processes, {self.depth} videos ahead")
        elif args.decode_workers == AUTO:
            logger.warning(f"lvu_ext: /dev/shm has {(shm_free_bytes() or 0) / 1e9:.2f} GB free, too little for decode workers' output; "
                           "decoding in the main process (decode_workers=0). Give the container more (docker --shm-size=16g) "
                           "to use them")

    @contextmanager
    def session(self):
        """A prefetcher for one batch of requests; closed (workers stopped) at its end."""
        started = time.monotonic()
        if self.workers:
            # the worker casts to the vision dtype as the in-process path does (float32: no cast)
            dtype = None if self.vision_dtype == torch.float32 else self.vision_dtype
            prefetcher = WorkerPrefetcher(self.workers, self.depth, self._video_processor, dtype, self._vision_batch)
        else:
            prefetcher = VideoPrefetcher(load_video, self.depth)
        try:
            yield prefetcher
        finally:
            prefetcher.close()
            self.prefetched += prefetcher.prefetched
            self.wall_s += time.monotonic() - started

    def took(self, prefetcher) -> float:
        """The wait of the prefetcher's last take(), added to the run's total."""
        self.waited_s += prefetcher.last_wait_s
        return prefetcher.last_wait_s
