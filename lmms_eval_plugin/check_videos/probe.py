"""What a video's header says, without decoding: container, codec, size, duration, listed
frames. Runs inside a worker process, because opening a file can itself block (a FIFO, a
dead network mount) and only a process can be killed."""

from __future__ import annotations

import os
import stat


def probe(path: str) -> dict:
    """Header facts of `path`; `probe_error` says why the header could not be read (the
    decode then reports the run's own reason)."""
    info: dict = {"found": os.path.exists(path)}
    if not info["found"]:
        return info
    st = os.stat(path)
    info["size_bytes"] = st.st_size
    info["regular_file"] = stat.S_ISREG(st.st_mode)
    try:
        import av

        with av.open(path) as container:
            info["container"] = container.format.name
            info["duration_s"] = container.duration / 1e6 if container.duration and container.duration > 0 else None
            streams = container.streams.video
            if not streams:
                info["probe_error"] = "no video stream"
                return info
            stream = streams[0]
            info["codec"] = stream.codec_context.name
            info["width"], info["height"] = stream.codec_context.width, stream.codec_context.height
            info["listed_frames"] = int(stream.frames or 0) or None
            info["stated_fps"] = float(stream.average_rate) if stream.average_rate else None
            if stream.duration and stream.time_base:
                info["stream_duration_s"] = float(stream.duration * stream.time_base)
    except Exception as exc:  # PyAV raises per-errno subclasses; the message is what matters
        info["probe_error"] = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
    return info
