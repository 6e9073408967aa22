"""The sampled frames of an H.264/HEVC video, decoding only what they depend on.

Two savings, both exact:
- a non-reference frame (most B-frames of a real encode) is a reference of no other frame,
  so the decoder is told, per packet, to skip it (FFmpeg's `skip_frame=NONREF`) unless
  the packet is a sampled frame: no other frame's pixels change;
- a stretch of packets no sampled frame depends on (the rest of a GOP after its last
  sampled frame, GOPs without one) is never decoded: the reader seeks to the keyframe of
  the next sampled frame, as decord does for every frame it is asked for.

Frame k is the k-th frame of FFmpeg's sequential decode (frames.py). This reader gets
the same frames only where it can prove it does, and raises NotProvable otherwise (the
sequential reader then reads the file):
- containers that store presentation timestamps per packet (MP4/MOV, Matroska/WebM, FLV),
  so the k-th frame is the k-th non-discarded packet in pts order; not AVI (its timestamps
  are in decode order) nor MPEG-TS/PS (timestamps that wrap and jump);
- an edit list's pre-roll packets (flagged discard by the demuxer) are decoded as
  references but are not frames, as in the sequential decode;
- a seek lands only on an instantaneous decoder refresh (H.264 IDR, HEVC IRAP), read from
  the packet's NAL units: a keyframe flag alone also marks open-GOP I-frames and
  intra-refresh recovery points, after which the decoder shows wrong pixels;
- frames must leave the decoder in pts order with the wanted timestamps, or it gives up.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field

import numpy as np

from lmms_eval_plugin.engine.frames import NO_FRAMES, NoFrames, NotProvable, check_complete, part_slice, plan_indices

NAME = "pyav_sparse"
SKIPPABLE_CODECS = ("h264", "hevc")
# libavformat's names: containers whose packets carry presentation timestamps
PTS_CONTAINERS = ("mov", "mp4", "matroska", "webm", "flv")
H264_IDR = 5
HEVC_IRAP = range(16, 24)  # BLA, IDR, CRA: a decoder may start here (CRA's leading frames: PacketIndex.runs)


@dataclass
class PacketIndex:
    """The video packets of a file in decode order, from one demux pass (nothing decoded)."""

    pts: list[int]
    keyframes: list[int]  # decode-order positions where decoding may start: the first packet and the refresh points
    fps: float
    discarded: set[int] = field(default_factory=set)  # pts of pre-roll packets (edit lists): decoded, never shown
    position: dict[int, int] = field(default_factory=dict)  # pts -> decode-order position
    keyframe_set: set[int] = field(default_factory=set)

    def __post_init__(self):
        self.position = {p: i for i, p in enumerate(self.pts)}
        self.keyframe_set = set(self.keyframes)

    def frames(self) -> list[int]:
        """The pts of the frames the sequential decode shows, in its order."""
        return sorted(p for p in self.pts if p not in self.discarded)

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


def _nal_length_size(codec: str, extradata: bytes | None) -> int | None:
    """Bytes of the NAL length prefix in MP4-style packets (avcC / hvcC), None if not that form."""
    if not extradata or extradata[0] != 1:
        return None
    at = 4 if codec == "h264" else 21
    return (extradata[at] & 3) + 1 if len(extradata) > at else None


def is_refresh_point(codec: str, data: bytes, length_size: int) -> bool:
    """Whether a packet holds an IDR (H.264) or IRAP (HEVC) picture: decoding may start here."""
    at = 0
    while at + length_size < len(data):
        size = int.from_bytes(data[at : at + length_size], "big")
        header = data[at + length_size]
        if codec == "h264" and header & 0x1F == H264_IDR:
            return True
        if codec == "hevc" and (header >> 1) & 0x3F in HEVC_IRAP:
            return True
        at += length_size + size
    return False


def packet_index(path: str) -> PacketIndex:
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise NoFrames("no video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if codec not in SKIPPABLE_CODECS:
            raise NotProvable(f"codec {codec}: it reads H.264/HEVC only")
        if not set(container.format.name.split(",")) & set(PTS_CONTAINERS):
            raise NotProvable(f"container {container.format.name}: its timestamps do not give presentation order")
        length_size = _nal_length_size(codec, stream.codec_context.extradata)
        pts, keyframes, discarded, packets = [], [], set(), 0
        for packet in container.demux(stream):
            if not packet.size:
                continue
            packets += 1
            if packet.is_discard:
                discarded.add(packet.pts)
            if not pts or (packet.is_keyframe and length_size and is_refresh_point(codec, bytes(packet), length_size)):
                keyframes.append(len(pts))
            pts.append(packet.pts)
        check_complete(packets, int(stream.frames or 0), container.format.name)
        index = PacketIndex(pts, keyframes, float(stream.average_rate or 0.0), discarded)
    if not pts:
        raise NoFrames("zero decodable frames")
    if any(p is None for p in pts) or len(index.position) != len(pts):
        raise NotProvable("packets without distinct timestamps")
    return index


def _frames_at(path: str, index: PacketIndex, wanted: list[int], chunk: int):
    """The frames whose pts are `wanted` (ascending), as arrays of at most `chunk` frames."""
    import av

    want, got, pending = set(wanted), 0, []

    def collect(frames):
        nonlocal got, pending
        for frame in frames:
            if frame.pts not in want or (got and frame.pts <= wanted[got - 1]):  # not sampled, or taken before a seek that landed early
                continue
            if frame.pts != wanted[got]:  # frames leave the decoder in presentation order, or we stop
                raise NotProvable(f"frame at pts {frame.pts} came out of order (expected {wanted[got]})")
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
                        raise NotProvable(f"seeking to pts {index.pts[start]} landed at pts {packet.pts}")
                codec.skip_frame = "DEFAULT" if packet.pts in want else "NONREF"
                yield from collect(codec.decode(packet))
                fed = position
                if position >= end:
                    break
        yield from collect(codec.decode(None))
    if got != len(wanted):
        raise NotProvable(f"decoded {got} of the {len(wanted)} sampled frames")
    if pending:
        yield np.stack(pending)


def decode_sparse(path: str, plan, chunk: int | None = None, part: tuple[int, int] = (0, 1)):
    """video.py's reader signature: (frames, indices, total, fps, requested), the frames
    those of `part` (frames.part_slice); with `chunk`, an iterator of arrays of at most
    `chunk` frames."""
    index = packet_index(path)
    presentation = index.frames()
    total = len(presentation)
    idx, requested = plan_indices(plan, total, index.fps)
    if len(idx) == 0:
        raise NoFrames("zero decodable frames")
    wanted = [presentation[i] for i in idx[part_slice(len(idx), chunk, part)]]
    if not wanted:
        return NO_FRAMES, idx, total, index.fps, requested  # a part without frames
    chunks = _frames_at(path, index, wanted, chunk or len(wanted))
    first = next(chunks)  # decode errors surface here, inside the reader choice
    if chunk is None:
        chunks.close()
        return first, idx, total, index.fps, requested
    return itertools.chain([first], chunks), idx, total, index.fps, requested
