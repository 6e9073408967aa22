"""Where a request's frames come from, chosen by `decode_workers` and `prefetch`:

- `decode_workers=0`: one process per video ahead (at least one) decodes whole videos and
  hands the frames back; the video processor runs in the main process;
- `decode_workers=N`: worker processes decode and preprocess the next `prefetch` videos
  (decode_workers.py); `auto` picks N from where the model runs (decode_choice).

Either way every decode runs in a process that can be killed when it passes its deadline
(`decode_timeout_s`, deadline.py) or dies (decode_workers.WorkerPrefetcher). It also keeps
the run's totals: videos served from the look-ahead, seconds the model waited for frames
(`wait_s` per record), and the wall time of the request batches."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

import torch

from lmms_eval_plugin.engine.decode_process import start_light_server
from lmms_eval_plugin.engine.decode_workers import WorkerPrefetcher, start_server

AUTO = "auto"
MAX_WORKERS_DEFAULT = 8  # README "Decode workers": ~8 s of CPU decode per 256-frame request against ~1 s of GPU
MAX_PREFETCH = 16  # the look-ahead cap the memory bound is documented for
CPU_MODEL_WORKERS = 0  # decode_workers=auto with the model on the CPU (decode_choice; docs/bench/decode_auto)
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


def model_on_cpu(args) -> bool:
    """Where the model will run, as the model class places it (cuda when torch sees a GPU,
    unless `device` / `device_map` say otherwise)."""
    cuda = torch.cuda.is_available()
    device_map, device = getattr(args, "device_map", ""), getattr(args, "device", None)
    if device_map == "auto":
        return not cuda
    where = device_map or device or ("cuda" if cuda else "cpu")
    return str(where).startswith("cpu")


def decode_choice(args, on_cpu: bool | None = None) -> tuple[int, int, str]:
    """(decode workers, videos ahead, why) from the model args. `auto` workers: with the
    model on a GPU, the cores shared by this machine's processes, at most
    MAX_WORKERS_DEFAULT; with it on the CPU, CPU_MODEL_WORKERS (0: decode in torch-free
    processes, preprocess in the main process), because there the model needs the cores the
    workers (and their fork server's torch) would take: measured on 2 cores
    (docs/bench/decode_auto), a 3-video probe and a decode-bound 720p workload were both
    faster so than with 1 or 2 workers. `auto` prefetch: one video ahead per worker (1 with
    decode_workers=0), at most MAX_PREFETCH."""
    on_cpu = model_on_cpu(args) if on_cpu is None else on_cpu
    if args.decode_workers == AUTO:
        free = shm_free_bytes()
        if free is not None and free < MIN_SHM_BYTES:
            workers, why = 0, f"/dev/shm has {free / 1e9:.2f} GB free, too little for the workers' output"
        elif on_cpu:
            workers = min(CPU_MODEL_WORKERS, default_decode_workers())
            why = ("the model runs on the CPU: its threads need the cores that decode workers would take; videos decode ahead "
                   "in separate processes and the video processor runs with the model")
        else:
            workers = default_decode_workers()
            why = f"the model runs on an accelerator: {usable_cpus()} CPUs shared by {local_processes()} process(es), at most {MAX_WORKERS_DEFAULT}"
    else:
        workers, why = int(args.decode_workers), "asked for"
    depth = min(MAX_PREFETCH, workers if workers else 1) if args.prefetch == AUTO else int(args.prefetch)
    return workers, depth, why


def decode_plan(args, on_cpu: bool | None = None) -> tuple[int, int]:
    """(decode workers, videos ahead) from the model args."""
    return decode_choice(args, on_cpu)[:2]


class FrameSource:
    def __init__(self, args, video_processor):
        """Made before the model is loaded, so that the workers' fork server starts (imports
        torch and the processor, seconds) while the weights load; set `vision_dtype` once
        they have."""
        self.workers, self.depth, why = decode_choice(args)
        self._video_processor = video_processor
        self.vision_dtype = torch.float32
        self._vision_batch = args.vision_batch
        self._timeout = args.decode_timeout_s
        self._reader = getattr(args, "decoder", "auto")
        cache = getattr(args, "frame_cache", None)
        self._frame_cache = (cache, getattr(args, "frame_cache_gb", None), _processed_as(args, video_processor)) if cache else None
        self.frame_cache_states: dict[str, int] = {}  # hit / miss / stored / off: videos taken in each state
        self.frame_cache_saved_s = 0.0  # what the decodes of the videos read from the cache took when stored
        free = shm_free_bytes()
        self._frames_via_shm = free is None or free >= MIN_SHM_BYTES
        self.prefetched = 0
        self.waited_s = 0.0
        self.wall_s = 0.0
        from loguru import logger

        # every decode runs in a process that can be killed, decode_workers=0 too; its fork
        # server starts now, while the weights load
        if self._frame_cache:
            logger.info(f"lvu_ext: frame cache {self._frame_cache[0]} (cap {self._frame_cache[1] or 'none'} GB): a video decoded "
                        "before with this frame plan is read from there (docs/frame-cache.md); it keeps "
                        + ("the processor's resized frames (frame_cache_stage=processed)" if self._frame_cache[2] else
                           "the decoded frames (frame_cache_stage=decoded)"))
        if self.workers:
            start_server(video_processor)
        else:
            start_light_server()
        if self.workers:
            logger.info(f"lvu_ext: decode_workers={self.workers} worker processes decode and preprocess, {self.depth} videos ahead ({why})")
        elif args.decode_workers == AUTO and why.startswith("/dev/shm"):
            logger.warning(f"lvu_ext: {why}; decode_workers=0: videos decode in separate processes, {self.depth} ahead, "
                           "preprocessing in the main process. Give the container more (docker --shm-size=16g) to use decode workers")
        else:
            logger.info(f"lvu_ext: decode_workers=0: videos decode in separate processes, {self.depth} ahead, the video processor "
                        f"runs in the main process ({why})")

    @contextmanager
    def session(self):
        """A prefetcher for one batch of requests; closed (workers stopped) at its end."""
        started = time.monotonic()
        # the worker casts to the vision dtype as the in-process path does (float32: no cast)
        dtype = None if self.vision_dtype == torch.float32 else self.vision_dtype
        if self.workers:
            prefetcher = WorkerPrefetcher(self.workers, self.depth, self._video_processor, dtype, self._vision_batch,
                                          timeout=self._timeout, reader=self._reader, frame_cache=self._frame_cache)
        else:  # decode only, one whole video per process: the one needed now and each one ahead, as threads did
            prefetcher = WorkerPrefetcher(self.depth + 1, self.depth, self._video_processor, dtype, self._vision_batch,
                                          timeout=self._timeout, preprocess=False, reader=self._reader, frames_via_shm=self._frames_via_shm,
                                          frame_cache=self._frame_cache)
        try:
            yield prefetcher
        finally:
            prefetcher.close()
            self.prefetched += prefetcher.prefetched
            self.wall_s += time.monotonic() - started

    def took(self, prefetcher) -> float:
        """The wait of the prefetcher's last take(), added to the run's total."""
        self.waited_s += prefetcher.last_wait_s
        state = getattr(prefetcher, "last_frame_cache", "off")
        self.frame_cache_states[state] = self.frame_cache_states.get(state, 0) + 1
        if state == "hit":
            self.frame_cache_saved_s += getattr(prefetcher, "last_decode_s", 0.0)
        return prefetcher.last_wait_s


def _processed_as(args, video_processor) -> str | None:
    """The processed key of frame_cache_stage=processed (processed_frames.py), after proving
    on this processor that its two steps give its one call's bits; None for `decoded`."""
    if getattr(args, "frame_cache_stage", "decoded") != "processed":
        return None
    from lmms_eval_plugin.engine.processed_frames import check_two_steps, processed_key
    from lmms_eval_plugin.model_args import ModelArgError

    try:
        check_two_steps(video_processor)
    except ValueError as e:
        raise ModelArgError(f"lvu_ext: model arg {e}") from None
    return processed_key(video_processor)
