"""Realistic generated clips for decoder benchmarks: what long-video datasets hold, not a
tiny noise clip. H.264 High profile from x264 (`veryfast` or `medium`, CABAC and B-frames
as those presets set them, a keyframe every few seconds) at 720p/1080p in MP4 or MKV, and
VP9 in WebM. The picture is a camera pan over a textured scene with moving objects, so
every frame carries real motion and detail and the bitrate is that of real footage."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ClipSpec:
    name: str
    width: int
    height: int
    seconds: int
    codec: str = "libx264"  # or libvpx-vp9
    preset: str = "veryfast"  # x264 preset; VP9 runs libvpx's realtime mode at cpu-used 8
    keyframe_s: int = 5
    container: str = "mp4"  # mp4, mkv, webm
    fps: int = 30

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.container}"

    def describe(self) -> str:
        codec = f"H.264 High (x264 {self.preset})" if self.codec == "libx264" else "VP9 (libvpx realtime)"
        return (f"{self.width}x{self.height} {self.fps} fps, {self.seconds // 60} min {self.seconds % 60} s, {codec}, "
                f"keyframe every {self.keyframe_s} s, .{self.container}")


def _scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A textured scene twice the frame's width: coarse shapes plus fine grain."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 255, (height // 16 + 1, width // 8 + 1, 3), dtype=np.uint8)
    scene = np.kron(coarse, np.ones((16, 16, 1), dtype=np.uint8))[:height, : 2 * width].astype(np.int16)
    scene += rng.integers(-24, 24, scene.shape, dtype=np.int16)
    return np.clip(scene, 0, 255).astype(np.uint8)


def _frame(scene: np.ndarray, t: int, width: int, height: int) -> np.ndarray:
    span = scene.shape[1] - width
    x = (3 * t) % (2 * span)
    x = x if x < span else 2 * span - x  # pan back and forth
    img = scene[:, x : x + width].copy()
    for k in range(3):  # objects crossing the frame at their own speeds
        bw, bh = width // 10, height // 8
        bx = (t * (4 + 3 * k)) % (width - bw)
        by = (height // 4) * (k + 1) - bh // 2
        img[by : by + bh, bx : bx + bw] = ((90 * k + t) % 255, (40 + 2 * t) % 255, 200 - 60 * k)
    return img


def ensure_realistic_clip(folder: Path, spec: ClipSpec) -> Path:
    import av

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / spec.filename
    if path.exists():
        return path
    tmp = path.with_name(path.stem + ".partial." + spec.container)
    gop = spec.fps * spec.keyframe_s
    if spec.codec == "libx264":
        options = {"preset": spec.preset, "crf": "23", "profile": "high", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
    else:
        options = {"deadline": "realtime", "cpu-used": "8", "b": "3M", "g": str(gop), "row-mt": "1"}
    scene = _scene(spec.width, spec.height)
    with av.open(str(tmp), "w", format={"mkv": "matroska"}.get(spec.container, spec.container)) as container:
        stream = container.add_stream(spec.codec, rate=spec.fps, options=options)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        for t in range(spec.seconds * spec.fps):
            for packet in stream.encode(av.VideoFrame.from_ndarray(_frame(scene, t, spec.width, spec.height), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)
    return path


def probe(path: Path) -> dict:
    """What the file is: codec, profile, B-frames seen in its first frames, bitrate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {"codec": stream.codec_context.name, "profile": stream.codec_context.profile, "width": stream.width,
                "height": stream.height, "frames_listed": int(stream.frames or 0), "bytes": path.stat().st_size,
                "duration_s": float(container.duration / 1e6) if container.duration else None}
        # PictureType: 1 I, 2 P, 3 B (an int or an enum, by PyAV version)
        kinds = [int(frame.pict_type) for _, frame in zip(range(120), container.decode(stream))]
    info["b_frames_in_first_120"] = sum(k == 3 for k in kinds)
    if info["duration_s"]:
        info["mbit_s"] = round(8 * info["bytes"] / info["duration_s"] / 1e6, 2)
    return info


def spec_dict(spec: ClipSpec) -> dict:
    return {**asdict(spec), "describe": spec.describe()}
