"""What every reader shares: the frame plan, the sampled result, the errors, and index
sampling. A frame is FFmpeg's: frame k of a video is the k-th frame its sequential decode
of the first video stream yields (edit lists applied), and the total is that decode's
count (docs/decoding.md). The readers (sequential_decode.py, sparse_decode.py,
decord_decode.py) import this module; video.py chooses among them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NO_FRAMES = np.zeros((0, 0, 0, 3), np.uint8)  # a part of a video with no sampled frame (part_slice)


class NoFrames(Exception):
    """The file opened but holds no decodable video frame (no video stream, or empty)."""


class TruncatedVideo(Exception):
    """Fewer frames decode than the container's sample tables list: the file was cut short."""


class NotProvable(Exception):
    """A fast reader cannot prove it would return the sequential decode's frames for this
    file (codec, container, timestamps, seeking): the sequential reader reads it."""


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
    frame_cache: str = "off"  # off | hit | miss (decoded, not stored) | stored (decoded and stored): frame_cache.py
    # with a frame cache: seconds this decode took; on a hit, what the stored decode took (what it saved)
    decode_s: float = 0.0
    # frame_cache_stage=processed (processed_frames.py): `frames` are already the processor's
    # resized frames (a hit), or, decoded, the processed entry they are to be stored in (the
    # entry's key, and the position of the first frame in the sampled list)
    resized: bool = False
    store_key: str | None = None
    store_start: int = 0

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
    the cut and says nothing else."""
    if total < listed and any(name in container_format.split(",") for name in SAMPLE_TABLE_FORMATS):
        raise TruncatedVideo(f"the container lists {listed} frames but only {total} decode (file cut short?)")
