"""The truth a reader is checked against: FFmpeg's own sequential decode, by the ffmpeg
BINARY (imageio-ffmpeg's), not by PyAV. Frame k is the k-th frame it yields for the first
video stream, edit lists applied; the total is their count (docs/decoding.md).

  ffmpeg -noautorotate -i FILE -map 0:v:0 -fps_mode passthrough -f rawvideo -
    -fps_mode passthrough: every decoded frame once. The default (cfr for rawvideo)
      duplicates frames of a VFR file to a constant rate (150 frames, not 117, on the
      corpus's phone-style file); `-vsync` no longer exists in FFmpeg 9.
    -noautorotate: the decoded pictures, never rotated, as lmms-eval's PyAV reader returns
      them (the CLI otherwise transposes a file with a display matrix).
    no -pix_fmt: the decoder's own planes, bit-exact by the codec standards.

RGB is then made from those planes by PyAV's converter (`to_ndarray(format="rgb24")`, what
the readers call), so a reader's frame equals the truth's bit for bit when it is the same
picture. The CLI's own rgb24 output is bit-identical to PyAV's on 30 of the corpus's 31
files; on 10-bit 4:2:0 it differs by up to 30 levels (swscale of FFmpeg 9 vs PyAV's 7.1),
which says nothing about which frame it is, so the conversion is kept out of the truth.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from lmms_eval_plugin.bench.decode.corpus import ffmpeg_exe

_OUTPUT_VIDEO = re.compile(r"Output #0.*?Video: rawvideo(?: \([^)]*\))?, (\w+)[^\n]*?, (\d+)x(\d+)\b", re.S)


@dataclass
class Truth:
    path: str
    pix_fmt: str
    width: int
    height: int
    avg_fps: float  # the container's average rate, as the readers take it (PyAV's stream.average_rate)
    raw: bytes  # the decoder's planes, frame after frame
    frame_bytes: int

    @cached_property
    def total(self) -> int:
        return len(self.raw) // self.frame_bytes

    def frame(self, k: int) -> np.ndarray:
        """Frame k as (H, W, 3) uint8 RGB."""
        import av

        if not 0 <= k < self.total:
            raise IndexError(f"frame {k} of a {self.total}-frame video: {self.path}")
        frame = av.VideoFrame(self.width, self.height, self.pix_fmt)
        data, offset = self.raw[k * self.frame_bytes : (k + 1) * self.frame_bytes], 0
        for i, plane in enumerate(frame.planes):  # rawvideo rows are packed; PyAV's may be padded to line_size
            row = plane.width * _plane_bytes_per_pixel(frame.format, i)
            rows = np.frombuffer(data, np.uint8, row * plane.height, offset).reshape(plane.height, row)
            padded = np.zeros((plane.height, plane.line_size), np.uint8)
            padded[:, :row] = rows
            plane.update(padded.tobytes())
            offset += row * plane.height
        if offset != self.frame_bytes:
            raise ValueError(f"{self.pix_fmt}: planes hold {offset} bytes, ffmpeg wrote {self.frame_bytes} per frame")
        return frame.to_ndarray(format="rgb24")

    def frames(self, indices) -> np.ndarray:
        return np.stack([self.frame(int(k)) for k in indices]) if len(indices) else np.zeros((0, self.height, self.width, 3), np.uint8)


def _plane_bytes_per_pixel(fmt, plane: int) -> int:
    return sum(-(-c.bits // 8) for c in fmt.components if c.plane == plane)


def _run(path: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-noautorotate", "-i", path, "-map", "0:v:0", "-an", "-sn", "-dn",
           "-fps_mode", "passthrough", *extra, "-c:v", "rawvideo", "-f", "rawvideo", "-"]
    done = subprocess.run(cmd, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg could not decode {path}: {done.stderr.decode(errors='replace').strip()[-500:]}")
    return done


def sequential_decode_truth(path: str) -> Truth:
    """FFmpeg's sequential decode of `path`'s first video stream, held as the decoder's planes."""
    import av

    one = _run(path, "-frames:v", "1")  # one frame's size in the decoder's format, as ffmpeg packs it
    found = _OUTPUT_VIDEO.search(one.stderr.decode(errors="replace"))
    if found is None or not one.stdout:
        raise RuntimeError(f"ffmpeg wrote no video frame for {path}")
    pix_fmt, width, height = found.group(1), int(found.group(2)), int(found.group(3))
    raw = _run(path).stdout
    if len(raw) % len(one.stdout):
        raise RuntimeError(f"ffmpeg wrote {len(raw)} bytes for {path}, not a whole number of {len(one.stdout)}-byte frames (size change mid-stream?)")
    with av.open(path) as container:
        avg_fps = float(container.streams.video[0].average_rate or 0.0)
    return Truth(path, pix_fmt, width, height, avg_fps, raw, len(one.stdout))
