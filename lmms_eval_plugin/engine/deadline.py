"""How long one video's decode may take before its process is killed (`decode_timeout_s`).

A decode that never returns (a decoder stuck in a native loop, a file on a dead mount)
would hang the whole run with no message. So every decode runs in a process that can be
killed (decode_workers.py), and the model waits for a video at most this long: past it the
process is killed, the video retried once with the sequential reader, then failed.

The default scales with the work: seconds of video to demux and decode, and sampled frames
to convert and preprocess, at a few times the slowest rates measured in
docs/bench/decode/decode.md (one core, AMD EPYC, 2 cores):
- SECONDS_PER_VIDEO_SECOND: FFmpeg's full sequential decode (`pyav` row, the reader that
  decodes every frame) of the slowest clip per second of video, VP9 720p webm:
  25.2 s CPU for 120 s of video = 0.21 s per second (H.264 720p: 0.06, 1080p: 0.13);
- SECONDS_PER_FRAME: one more sampled frame, decoded at 1080p, converted to RGB and put
  through the video processor: (14.3 - 6.7) s / (512 - 64) frames = 0.017 s for the decode
  and conversion (`pyav_sparse` rows), plus the processor's resize, rounded up to 0.05 s;
- MARGIN 5: a 4K stream decodes ~4x slower than 1080p per second, and decode workers run at
  a lower priority beside a model that may use the same cores;
- MINIMUM_S 60: process start, imports, file system latency; no short clip is failed on them.
A 5 min 720p video at 128 frames gets 5 x (300 x 0.21 + 128 x 0.05) = 347 s; an hour-long
one ~3,800 s. A video it still fails is named in the run's failures, never silently cut.
"""

from __future__ import annotations

from lmms_eval_plugin.engine.frames import FramePlan

SECONDS_PER_VIDEO_SECOND = 0.21
SECONDS_PER_FRAME = 0.05
MARGIN = 5.0
MINIMUM_S = 60.0
UNKNOWN_DURATION_S = 3600.0  # a container that states no duration is budgeted as an hour of video
AUTO = "auto"


def decode_deadline_s(duration_s: float | None, frames: int, minimum: float = MINIMUM_S, margin: float = MARGIN,
                      per_second: float = SECONDS_PER_VIDEO_SECOND, per_frame: float = SECONDS_PER_FRAME) -> float:
    """Seconds one decode of a video of `duration_s` seconds (None: unknown) sampling `frames`
    frames may take, decode and preprocessing together, before it counts as hung."""
    duration = UNKNOWN_DURATION_S if duration_s is None or duration_s != duration_s or duration_s < 0 else float(duration_s)
    return max(float(minimum), margin * (duration * per_second + max(0, int(frames)) * per_frame))


def video_duration_s(path: str) -> float | None:
    """The container's stated duration, read from its header (FFmpeg probes at most a few MB:
    bounded, unlike a decode); None when it states none or cannot be opened (the decode
    then reports why)."""
    try:
        import av

        with av.open(path) as container:
            if container.duration is not None and container.duration > 0:
                return container.duration / 1e6  # AV_TIME_BASE
            streams = container.streams.video
            if streams and streams[0].duration and streams[0].time_base:
                return float(streams[0].duration * streams[0].time_base)
    except Exception:  # any failure to open is the decode's to report, with its reason
        return None
    return None


def planned_frames(plan: FramePlan, duration_s: float | None) -> int:
    """Frames the plan asks of a video this long (fps plans: one per 1/fps s, capped)."""
    if plan.fps is None:
        return int(plan.num_frames or 0)
    duration = UNKNOWN_DURATION_S if duration_s is None else duration_s
    wanted = int(duration * plan.fps) + 1
    return min(wanted, plan.max_frames) if plan.max_frames else wanted


def deadline_for(path: str, plan: FramePlan, timeout_s: float | str = AUTO) -> float:
    """The `decode_timeout_s` model arg for one video: seconds as given, or (auto) the
    default scaled by the video's duration and the frames the plan asks."""
    if timeout_s != AUTO:
        return float(timeout_s)
    duration = video_duration_s(path)
    return decode_deadline_s(duration, planned_frames(plan, duration))
