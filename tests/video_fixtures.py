"""Generated videos with one thing wrong each, and the docs file of the test task
tests/bad_video_task (lvu_test_videos) that points at them."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from conftest import write_video

TASK_DIR = Path(__file__).resolve().parent / "bad_video_task"
TASK = "lvu_test_videos"


def write_vfr_video(path: Path, n_frames: int = 16, size=(64, 48)) -> Path:
    """Frame gaps alternate 300 ms / 50 ms: a variable frame rate."""
    import av

    rng = np.random.default_rng(1)
    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for t in range(n_frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += 50 if t % 2 else 300
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_no_frames_video(path: Path) -> Path:
    """A valid MP4 container holding no video frame."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


def write_noise_video(path: Path, seed: int = 2, size=(64, 48), n_frames: int = 12, colour=None) -> Path:
    """Full-range noise, or one solid `colour` (the tiny random model answers differently
    per colour). 4:4:4, so odd sizes work."""
    import av

    rng = np.random.default_rng(seed)
    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv444p"
        for _ in range(n_frames):
            pixels = np.full((h, w, 3), colour, np.uint8) if colour else rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_videos(root: Path) -> dict[str, str]:
    """kind -> absolute path, one per problem (plus good ones)."""
    root.mkdir(parents=True, exist_ok=True)
    good = write_video(root / "good.mp4", n_frames=20)
    truncated = root / "truncated.mp4"  # moov atom (at the end) cut off
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    return {
        "good": str(good),
        "good2": str(write_video(root / "good2.mp4", n_frames=24, seed=3)),
        "missing": str(root / "does_not_exist.mp4"),
        "harness_exit": "does_not_exist_either.mp4",
        "corrupt": str(corrupt),
        "truncated": str(truncated),
        "no_frames": str(write_no_frames_video(root / "no_frames.mp4")),
        "short": str(write_video(root / "short.mp4", n_frames=3)),
        "vfr": str(write_vfr_video(root / "vfr.mp4")),
        "odd_size": str(write_noise_video(root / "odd_size.mp4", size=(63, 47))),
    }


def write_docs(path: Path, kinds_and_videos: list[tuple[str, str]]) -> Path:
    docs = [{"doc_id": i, "kind": kind, "video": video, "answer": "A"} for i, (kind, video) in enumerate(kinds_and_videos)]
    path.write_text(json.dumps(docs))
    return path


def sampled_frames_plainly(path, n: int):
    """`n` linspace frames of the sequential decode, read the plainest way (every frame
    decoded in order by PyAV): the definition of a frame, independent of lvu_ext's readers."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack([frames[i] for i in np.linspace(0, len(frames) - 1, n, dtype=int)])
