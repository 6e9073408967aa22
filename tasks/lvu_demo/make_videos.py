"""Regenerate the bundled demo videos (committed; run only to change them).

Each clip is a few seconds of a coloured square moving over a plain background, so
frames differ and every decoder path is exercised. `python tasks/lvu_demo/make_videos.py`
"""

from pathlib import Path

import av
import numpy as np

CLIPS = {
    "red_right.mp4": ((220, 30, 30), "right", 48),
    "blue_left.mp4": ((30, 60, 220), "left", 40),
    "green_down.mp4": ((30, 200, 60), "down", 56),
    "yellow_up.mp4": ((230, 210, 40), "up", 36),
}


def write_clip(path: Path, color, direction: str, n_frames: int, size: int = 64, fps: int = 8) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for t in range(n_frames):
            img = np.full((size, size, 3), 16, np.uint8)
            step = int(t * (size - 16) / max(n_frames - 1, 1))
            x, y = {"right": (step, 24), "left": (size - 16 - step, 24), "down": (24, step), "up": (24, size - 16 - step)}[direction]
            img[y : y + 16, x : x + 16] = color
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


if __name__ == "__main__":
    out = Path(__file__).parent / "videos"
    out.mkdir(exist_ok=True)
    for name, (color, direction, n) in CLIPS.items():
        write_clip(out / name, color, direction, n)
        print(out / name)
