"""The sampled frames of an H.264/HEVC video, decoding only what they depend on.

Two savings, both exact:
- a non-reference frame (most B-frames of a real encode) is a reference of no other frame,
  so the decoder is told, per packet, to skip it (FFmpeg's `skip_frame=NONREF`) unless
  the packet is a sampled frame: no other frame's pixels change;
- a stretch of packets no sampled frame depends on (the rest of a GOP after its last
  sampled frame, GOPs without one) is never decoded: the reader seeks to the keyframe of
  the next sampled frame, as decord does for every frame it is asked for.

Frame k is the k-th packet in presentation order (pts), as decord counts frames, so the
sampled indices are decord's. Measured on the realistic clips (`lvu-ext bench --decode`,
reader `pyav_sparse`): pixels identical to decord's, in less time (docs/bench/decode/).
Other codecs (VP9, AV1, ...) are left to decord.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field

import numpy as np

SKIPPABLE_CODECS = ("h264", "hevc")


class NotSparse(Exception):
    """Not a file this reader handles (codec, timestamps, seeking): the next backend reads it."""


@dataclass
class PacketIndex:
    """The video packets of a file in decode order, from one demux pass (nothing decoded)."""

    pts: list[int]
    keyframes: list[int]  # decode-order positions of the keyframe packets
    fps: float
    listed: int  # frames the container lists (0 where it lists none)
    container_format: str
    position: dict[int, int] = field(default_factory=dict)  # pts -> decode-order position

    keyframe_set: set[int] = field(default_factory=set)

    def __post_init__(self):
        self.position = {p: i for i, p in enumerate(self.pts)}
        self.keyframe_set = set(self.keyframes)

    def runs(self, wanted: list[int]) -> list[tuple[int, int]]:
        """Decode-order [start, end] packet ranges that yield the `wanted` frames: each from
        the last keyframe before the frame (and shown no later than it) to the frame itself,
        overlapping or adjacent ranges merged."""
        spans = []
        for pts in wanted:
            end = self.position[pts]
            k = bisect.bisect_right(self.keyframes, end) - 1
            while k > 0 and self.pts[self.keyframes[k]] > pts:  # an open GOP's leading frame: its own GOP began earlier
                k -= 1
            spans.append((self.keyframes[k] if k >= 0 else 0, end))
        merged: list[list[int]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return [(start, end) for start, end in merged]


def packet_index(path: str) -> PacketIndex:
    import av

    from lmms_eval_plugin.engine.video import NoFrames

    with av.open(path) as container:
        if not container.streams.video:
            raise NoFrames("no video stream")
        stream = container.streams.video[0]
        if stream.codec_context.name not in SKIPPABLE_CODECS:
            raise NotSparse(f"codec {stream.codec_context.name}: it reads H.264/HEVC only")
        pts, keyframes = [], []
        for packet in container.demux(stream):
            if packet.size:
                if packet.is_keyframe:
                    keyframes.append(len(pts))
                pts.append(packet.pts)
        index = PacketIndex(pts, keyframes, float(stream.average_rate or 0.0), int(stream.frames or 0), container.format.name)
    if any(p is None for p in pts) or len(index.position) != len(pts) or not keyframes or keyframes[0] != 0:
        raise NotSparse("packets without distinct timestamps, or not starting at a keyframe")
    return index


def _frames_at(path: str, index: PacketIndex, wanted: list[int], chunk: int):
    """The frames whose pts are `wanted` (ascending), as arrays of at most `chunk` frames."""
    import av

    from lmms_eval_plugin.engine.video import NoFrames

    want, got, pending = set(wanted), 0, []

    def collect(frames):
        nonlocal got, pending
        for frame in frames:
            if frame.pts not in want:
                continue
            if frame.pts != wanted[got]:  # frames leave the decoder in presentation order, or we stop
                raise NoFrames(f"frame at pts {frame.pts} came out of order (expected {wanted[got]})")
            pending.append(frame.to_ndarray(format="rgb24"))
            got += 1
            if len(pending) == chunk:
                yield np.stack(pending)
                pending = []

    with av.open(path) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context
        codec.thread_type = "NONE"  # the per-packet skip holds for that packet only without frame threads
        fed = -1  # decode-order position of the last packet fed to the decoder
        for start, end in index.runs(wanted):
            if start != fed + 1:
                if fed >= 0:  # what the decoder still holds belongs to the previous run
                    yield from collect(codec.decode(None))
                    codec.flush_buffers()
                container.seek(index.pts[start], stream=stream, backward=True, any_frame=False)
            landed = start != fed + 1
            for packet in container.demux(stream):
                if not packet.size:  # end of stream
                    break
                position = index.position.get(packet.pts, -1)
                if landed:
                    landed = False
                    if position < 0 or position > start or position not in index.keyframe_set:
                        raise NotSparse(f"seeking to pts {index.pts[start]} landed at pts {packet.pts}")
                codec.skip_frame = "DEFAULT" if packet.pts in want else "NONREF"
                yield from collect(codec.decode(packet))
                fed = position
                if position >= end:
                    break
        yield from collect(codec.decode(None))
    if got != len(wanted):
        raise NoFrames(f"decoded {got} of the {len(wanted)} sampled frames")
    if pending:
        yield np.stack(pending)


def decode_sparse(path: str, plan, chunk: int | None = None, part: tuple[int, int] = (0, 1)):
    """video.py's backend signature: (frames, indices, total, fps, requested), the frames
    those of `part` (video.part_slice); with `chunk`, an iterator of arrays of at most
    `chunk` frames."""
    from lmms_eval_plugin.engine.video import NoFrames, check_complete, part_slice, plan_indices

    index = packet_index(path)
    total = len(index.pts)
    check_complete(total, index.listed, index.container_format)
    idx, requested = plan_indices(plan, total, index.fps)
    if len(idx) == 0:
        raise NoFrames("zero decodable frames")
    presentation = sorted(index.pts)
    wanted = [presentation[i] for i in idx[part_slice(len(idx), chunk, part)]]
    if not wanted:
        return np.zeros((0, 0, 0, 3), np.uint8), idx, total, index.fps, requested  # a part without frames
    chunks = _frames_at(path, index, wanted, chunk or len(wanted))
    first = next(chunks)  # decode errors surface here, inside the backend loop
    if chunk is None:
        chunks.close()
        return first, idx, total, index.fps, requested
    return itertools.chain([first], chunks), idx, total, index.fps, requested
