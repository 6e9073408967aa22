"""The benchmark's input: a synthetic clip long enough for the largest frame count
(so every case samples exactly the frames it asks for), written once and reused."""

from __future__ import annotations

from pathlib import Path


def ensure_clip(path: Path, n_frames: int, size=(640, 360), fps: int = 30) -> Path:
    """Moving blocks over a fixed noise background at 360p (a common source resolution of
    long-video sets); every frame differs, yet the file stays small and quick to decode."""
    import av
    import numpy as np

    path = Path(path)
    if path.exists():
        return path
    w, h = size
    background = np.random.default_rng(0).integers(0, 60, (h, w, 3), dtype=np.uint8)
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for t in range(n_frames):
            img = background.copy()
            x = (t * 5) % (w - 64)
            img[40:104, x : x + 64] = (200, (40 + 3 * t) % 200, 90)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)
    return path
