"""Frame sampling and decoding (METHOD.md section 3).

H.264/HEVC files are read by sparse_decode.py (PyAV, skipping the non-reference frames no
sampled frame needs: decord's indices and pixels, in less time); other codecs by decord
(what lmms-eval's own HF models use); PyAV's full decode is the fallback for files
neither can read. Every failure is raised as `VideoError` naming the file and
the reason, so the caller can name the document too.

Frames are sampled by index over the decoded frames (as lmms-eval's own models do). For a
variable-frame-rate video that is uniform in frames, not in time; `fps` plans use the
container's average frame rate. A decode error part way through fails the whole video
(no silent answer from half a video).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import numpy as np

from lmms_eval_plugin.engine.sparse_decode import NotSparse, decode_sparse

_NO_FRAMES = np.zeros((0, 0, 0, 3), np.uint8)  # a part of a video with no sampled frame (part_slice)


class NoFrames(Exception):
    """The file opened but holds no decodable video frame (no video stream, or empty)."""


class TruncatedVideo(Exception):
    """Fewer frames decode than the container's sample tables list: the file was cut short."""


# Containers whose frame count comes from per-sample tables, not from a header field. Other
# containers (MKV/WebM, AVI, ...) carry no exact count, so a shortfall there is not failed.
SAMPLE_TABLE_FORMATS = ("mov", "mp4", "m4a", "3gp", "3g2", "mj2")


class VideoError(Exception):
    """A video could not be used: missing, unreadable, or without decodable frames."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{reason}: {path}")

    def __reduce__(self):  # raised in a decode worker, re-raised here as the same error
        return (VideoError, (self.path, self.reason))


@dataclass(frozen=True)
class FramePlan:
    """How many frames one request wants: `num_frames` uniform frames, or one frame
    every 1/fps seconds capped at `max_frames` (then uniform `max_frames` frames)."""

    num_frames: int | None = 32
    fps: float | None = None
    max_frames: int | None = None

    def describe(self) -> str:
        if self.fps is not None:
            return f"{self.fps:g} fps" + (f" (max {self.max_frames})" if self.max_frames else "")
        return f"{self.num_frames} uniform"


@dataclass
class SampledVideo:
    frames: np.ndarray  # (F, H, W, 3) uint8
    indices: list[int]
    total_frames: int
    avg_fps: float
    requested: int  # frames the plan asked for on this video
    backend: str
    pixels: object = None  # the video processor's output, when a decode worker already ran it (frames then empty)

    @property
    def short(self) -> bool:
        """Fewer frames exist than were requested."""
        return len(self.indices) < self.requested


def uniform_indices(total_frames: int, n: int) -> np.ndarray:
    """`n` evenly spaced indices over the whole video, as numpy linspace (lmms-eval's
    convention). A video with fewer frames than `n` yields each frame once."""
    if total_frames <= 0:
        return np.zeros(0, dtype=int)
    if n >= total_frames:
        return np.arange(total_frames, dtype=int)
    return np.linspace(0, total_frames - 1, n, dtype=int)


def plan_indices(plan: FramePlan, total_frames: int, avg_fps: float) -> tuple[np.ndarray, int]:
    """Frame indices for `plan` and the number of frames it asked for."""
    if plan.fps is None:
        return uniform_indices(total_frames, plan.num_frames), plan.num_frames
    step = avg_fps / plan.fps if avg_fps > 0 else 1.0
    wanted = max(1, int(np.ceil(total_frames / max(step, 1e-9)))) if total_frames > 0 else 0
    if plan.max_frames and wanted > plan.max_frames:
        return uniform_indices(total_frames, plan.max_frames), plan.max_frames
    idx = np.unique(np.minimum(np.round(np.arange(wanted) * step), total_frames - 1).astype(int))
    return idx, wanted


def part_slice(n: int, chunk: int | None, part: tuple[int, int]) -> slice:
    """The sampled frames of part k of `parts` (decode workers split one video): whole
    chunks of `chunk` frames, the processor's calls, so the parts' outputs join to exactly
    the whole video's; parts as even as the chunks allow."""
    k, parts = part
    if parts <= 1:
        return slice(0, n)
    size = chunk or -(-n // parts)
    per, extra = divmod(-(-n // size), parts)
    first = k * per + min(k, extra)
    return slice(min(n, first * size), min(n, (first + per + (k < extra)) * size))


def check_complete(total: int, listed: int, container_format: str) -> None:
    """An MP4/MOV lists every sample in its tables (VFR included), so fewer decodable frames
    means samples are missing: a file cut short at a packet boundary decodes cleanly up to
    the cut (decord then reports only what it found) and says nothing else."""
    if total < listed and any(name in container_format.split(",") for name in SAMPLE_TABLE_FORMATS):
        raise TruncatedVideo(f"the container lists {listed} frames but only {total} decode (file cut short?)")


def _listed_frames(path: str) -> tuple[int, str]:
    """(frames the container lists, its format), read from the header without decoding."""
    import av

    with av.open(path) as container:
        streams = container.streams.video
        return (int(streams[0].frames or 0) if streams else 0), container.format.name


def _decode_decord(path: str, plan: FramePlan, chunk: int | None = None, part: tuple[int, int] = (0, 1)):
    """`chunk`: the frames come as a generator of arrays of at most `chunk` frames, so a
    caller that consumes them chunk by chunk never holds the whole video at full size.
    `part`: only that part's frames (part_slice); the indices are the whole video's."""
    from decord import VideoReader, cpu

    vr = VideoReader(path, ctx=cpu(0), num_threads=1)
    total, fps = len(vr), float(vr.get_avg_fps() or 0.0)
    check_complete(total, *_listed_frames(path))
    idx, requested = plan_indices(plan, total, fps)
    if len(idx) == 0:
        raise NoFrames("zero decodable frames")
    mine = idx[part_slice(len(idx), chunk, part)]
    if chunk is None or len(mine) == 0:
        return vr.get_batch(mine.tolist()).asnumpy() if len(mine) else _NO_FRAMES, idx, total, fps, requested
    first = vr.get_batch(mine[:chunk].tolist()).asnumpy()  # decode errors surface here, inside the backend loop
    rest = (vr.get_batch(mine[s : s + chunk].tolist()).asnumpy() for s in range(chunk, len(mine), chunk))
    return itertools.chain([first], rest), idx, total, fps, requested


def _decode_pyav(path: str, plan: FramePlan, part: tuple[int, int] = (0, 1), chunk: int | None = None):
    import av

    # Container frame counts are unreliable (VFR, missing headers), so frames are counted by
    # decoding; a second pass converts only the sampled ones, never holding a whole long video.
    with av.open(path) as container:
        if not container.streams.video:
            raise NoFrames("no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 0.0)
        total = sum(1 for _ in container.decode(stream))
        check_complete(total, int(stream.frames or 0), container.format.name)
    idx, requested = plan_indices(plan, total, fps)
    if len(idx) == 0:
        raise NoFrames("zero decodable frames")
    wanted = set(idx[part_slice(len(idx), chunk, part)].tolist())
    if not wanted:
        return _NO_FRAMES, idx, total, fps, requested
    with av.open(path) as container:
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(container.streams.video[0])) if i in wanted]
    if len(frames) != len(wanted):
        raise NoFrames(f"decoded {len(frames)} of the {len(wanted)} sampled frames on the second pass")
    return np.stack(frames), idx, total, fps, requested


def load_video(path: str, plan: FramePlan, chunk: int | None = None, part: tuple[int, int] = (0, 1)) -> SampledVideo:
    """The plan's frames of `path`. With `chunk`, `frames` may be an iterator of arrays of at
    most `chunk` frames (pyav_sparse, decord) instead of one array (decode_workers.py
    consumes it so). With `part` (k, parts), only part k's frames (part_slice); `indices`
    stay the whole video's."""
    if not isinstance(path, str) or not path:
        raise VideoError(str(path), "no video path given")
    if not os.path.exists(path):
        raise VideoError(path, "video file not found")
    if os.path.getsize(path) == 0:
        raise VideoError(path, "video file is empty (0 bytes)")
    errors, empty = [], False
    backends = (("pyav_sparse", decode_sparse), ("decord", _decode_decord), ("pyav", _decode_pyav))
    for backend, decode in backends:
        try:
            if backend == "pyav":  # decodes the whole video first anyway: its frames come as one array
                frames, idx, total, fps, requested = decode(path, plan, part=part, chunk=chunk)
            else:
                frames, idx, total, fps, requested = decode(path, plan, chunk=chunk, part=part)
        except NotSparse:  # not an H.264/HEVC file: decord's to read
            continue
        except NoFrames as exc:
            errors.append(f"{backend}: {exc}")
            empty = True
            continue
        except Exception as exc:  # decoder-specific exception types; try the next backend
            errors.append(f"{backend}: {type(exc).__name__}: {str(exc).strip()[:300]}")
            continue
        return SampledVideo(frames, [int(i) for i in idx], total, fps, requested, backend)
    reason = "no decodable video frames" if empty else "unreadable or corrupt video"
    raise VideoError(path, f"{reason} (" + "; ".join(errors) + ")")
