"""Which reader reads a video (docs/decoding.md).

Frame k of a video is the k-th frame of FFmpeg's sequential decode (frames.py). Every
reader on the default path returns exactly those frames:
- `pyav_sparse` (sparse_decode.py) reads H.264/HEVC in MP4/MOV/MKV/FLV, decoding only what
  the sampled frames depend on; it reads a file only where it can prove its frames are the
  sequential decode's, and says NotProvable otherwise;
- `pyav_sequential` (sequential_decode.py) is the sequential decode itself: every other
  file, and any file the sparse reader gave up on.
`decoder=decord` (decord_decode.py) reads with decord instead, only when asked.

Every failure is raised as `VideoError` naming the file and the reason, so the caller can
name the document too. A decode error part way through fails the whole video (no silent
answer from half a video).
"""

from __future__ import annotations

import os
import time

import numpy as np

from lmms_eval_plugin.engine import decord_decode, sequential_decode, sparse_decode
from lmms_eval_plugin.engine.frames import (  # noqa: F401  re-exported: the names callers know video.py by
    NO_FRAMES,
    FramePlan,
    NoFrames,
    NotProvable,
    SampledVideo,
    TruncatedVideo,
    VideoError,
    check_complete,
    part_slice,
    plan_indices,
    uniform_indices,
)

READERS = ("auto", "sequential", "decord")  # the `decoder` model arg's values


def _readers(reader: str):
    if reader == "auto":
        return (("pyav_sparse", sparse_decode.decode_sparse), ("pyav_sequential", sequential_decode.decode_sequential))
    if reader == "sequential":
        return (("pyav_sequential", sequential_decode.decode_sequential),)
    if reader == "decord":
        return (("decord", decord_decode.decode_decord),)
    raise ValueError(f"unknown reader {reader!r}; expected one of {', '.join(READERS)}")


def plan_key(plan: FramePlan, reader: str) -> str:
    """What besides the file decides a cache entry's bytes: the plan, and whether the frames
    are the exact ones (auto and sequential return the same, by definition) or decord's."""
    return f"{plan.num_frames}|{plan.fps}|{plan.max_frames}|{'decord' if reader == 'decord' else 'exact'}"


def processed_plan_key(plan: FramePlan, reader: str, processed_as: str) -> str:
    """plan_key of an entry of the processor's resized frames (processed_frames.processed_key)."""
    return f"{plan_key(plan, reader)}|{processed_as}"


def load_video(path: str, plan: FramePlan, chunk: int | None = None, part: tuple[int, int] = (0, 1), reader: str = "auto",
               cache=None, processed_as: str | None = None) -> SampledVideo:
    """The plan's frames of `path`. With `chunk`, `frames` may be an iterator of arrays of at
    most `chunk` frames instead of one array (decode_workers.py consumes it so). With `part`
    (k, parts), only part k's frames (part_slice); `indices` stay the whole video's.
    `reader`: `auto` (the exact readers above), `sequential`, or `decord`. `cache`: a
    frame_cache.FrameCache: a hit returns the stored frames (the bytes a decode returns),
    a miss decodes and stores them. `processed_as` (frame_cache_stage=processed, the
    processor's processed_frames.processed_key): first look for the processor's resized
    frames (a hit is `resized`); decoded frames stored earlier still serve; what is decoded
    is not stored here but marked for the processor's step to store resized (`store_key`)."""
    if cache is None:
        return _decode(path, plan, chunk, part, reader)
    processed = cache.key(path, processed_plan_key(plan, reader, processed_as)) if processed_as else None
    if processed:
        video = _cached(cache, processed, plan, chunk, part, count_miss=False)
        if video is not None:
            video.resized = True
            return video
    key = cache.key(path, plan_key(plan, reader))
    video = _cached(cache, key, plan, chunk, part)
    hit = video is not None
    if not hit:
        started = time.perf_counter()
        video = _decode(path, plan, chunk, part, reader)
        video.decode_s = time.perf_counter() - started
    start = part_slice(len(video.indices), chunk, part).start
    if processed and cache.writable:  # the processor's step stores them resized
        video.store_key, video.store_start = processed, start
    if hit:
        return video
    decoded_here = key is not None and cache.writable and not processed_as  # frame_cache_stage=decoded: store them
    video.frame_cache = "stored" if (decoded_here or video.store_key) else "miss"
    if decoded_here:
        cache.store_meta(key, video.indices, video.total_frames, video.avg_fps, video.backend)
    if isinstance(video.frames, np.ndarray):
        if decoded_here:
            cache.store(key, start, video.frames)
            cache.store_decode_s(key, start, start + len(video.frames), video.decode_s)
    else:
        video.frames = _timed(iter(video.frames), video, (cache, key, start) if decoded_here else None)
    return video


def _cached(cache, key: str | None, plan: FramePlan, chunk, part, count_miss: bool = True) -> SampledVideo | None:
    """This part's frames from the cache entry `key`, or None."""
    meta = cache.meta(key)
    if meta is None:
        cache.stats.misses += count_miss
        return None
    mine = part_slice(len(meta.indices), chunk, part)
    hit = cache.lookup(key, mine.start, mine.stop)
    if hit is None:
        return None
    requested = plan_indices(plan, hit.total_frames, hit.avg_fps)[1]
    return SampledVideo(hit.frames, list(hit.indices), hit.total_frames, hit.avg_fps, requested, hit.backend, frame_cache="hit",
                        decode_s=cache.decode_s(key, mine.start, mine.stop))


def _timed(chunks, video: SampledVideo, store: tuple | None):
    """The video's chunks as they pass; the time spent producing them (the lazy decode, not
    the consumer's work) is added to `video.decode_s`. `store` (cache, key, start): each chunk
    is stored as a piece at its position."""
    cache, key, first = store or (None, None, 0)
    start = first
    while True:
        started = time.perf_counter()
        chunk = next(chunks, None)
        video.decode_s += time.perf_counter() - started
        if chunk is None:
            break
        if store:
            cache.store(key, start, chunk)
        start += len(chunk)
        yield chunk
    if store:
        cache.store_decode_s(key, first, start, video.decode_s)


def _decode(path: str, plan: FramePlan, chunk, part, reader: str) -> SampledVideo:
    if not isinstance(path, str) or not path:
        raise VideoError(str(path), "no video path given")
    if not os.path.exists(path):
        raise VideoError(path, "video file not found")
    if os.path.getsize(path) == 0:
        raise VideoError(path, "video file is empty (0 bytes)")
    errors, empty = [], False
    for backend, decode in _readers(reader):
        try:
            frames, idx, total, fps, requested = decode(path, plan, chunk=chunk, part=part)
        except NotProvable:  # the sequential reader reads it
            continue
        except Exception as exc:  # NoFrames, TruncatedVideo, and the decoders' own exception types
            empty = isinstance(exc, NoFrames)
            detail = str(exc).strip()[:300] if isinstance(exc, (NoFrames, TruncatedVideo)) else f"{type(exc).__name__}: {str(exc).strip()[:300]}"
            errors.append(f"{backend}: {detail}")
            continue  # a failure of the sparse reader is the sequential decode's to confirm
        return SampledVideo(frames, [int(i) for i in idx], total, fps, requested, backend)
    reason = "no decodable video frames" if empty else "unreadable or corrupt video"
    raise VideoError(path, f"{reason} (" + "; ".join(errors) + ")")
