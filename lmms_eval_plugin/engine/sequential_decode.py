"""The reader that is right by definition: FFmpeg's sequential decode (PyAV over libav*).

Frame k is the k-th frame the decoder yields for the first video stream, in order, with
the demuxer's edit lists applied (pre-roll frames are dropped by libavcodec); the total is
the number yielded. This is what a player shows and what lmms-eval's own PyAV reader
returns. Only the sampled frames are converted to RGB, and they leave as chunks, so a long
video is never held in memory.

The sampled indices need the total before the decode starts. The total is first taken
from the packets (demux only, no decoding: each non-discarded packet of a video stream is
one frame in every container FFmpeg muxes); the single decode pass then checks it. Where
the decode yields another count (a corrupt packet, field-coded packets), the plan is
made again from the decoded count and the file decoded once more.
"""

from __future__ import annotations

import numpy as np

from lmms_eval_plugin.engine.frames import NO_FRAMES, NoFrames, check_complete, part_slice, plan_indices

NAME = "pyav_sequential"


class _CountChanged(Exception):
    def __init__(self, decoded: int):
        self.decoded = decoded


def _packet_count(path: str) -> tuple[int, float]:
    """(frames by packet count, average fps). Fails a file cut short: fewer packets than
    the container's sample tables list (discarded pre-roll packets are listed too)."""
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise NoFrames("no video stream")
        stream = container.streams.video[0]
        packets = frames = 0
        for packet in container.demux(stream):
            if packet.size:
                packets += 1
                frames += not packet.is_discard
        check_complete(packets, int(stream.frames or 0), container.format.name)
        return frames, float(stream.average_rate or 0.0)


def _sampled(path: str, positions: list[int], expected_total: int, chunk: int):
    """The frames at decode-order `positions` (ascending) as arrays of at most `chunk`; at
    the end raises _CountChanged when the decode's count is not `expected_total`, since the
    positions were planned on that count (a caller that already used chunks must drop them)."""
    import av

    want = set(positions)
    pending: list[np.ndarray] = []
    count = 0
    with av.open(path) as container:
        for count, frame in enumerate(container.decode(container.streams.video[0]), start=1):
            if count - 1 in want:
                pending.append(frame.to_ndarray(format="rgb24"))
                if len(pending) == chunk:
                    yield np.stack(pending)
                    pending = []
    if count != expected_total:
        raise _CountChanged(count)
    if pending:
        yield np.stack(pending)


def decode_sequential(path: str, plan, chunk: int | None = None, part: tuple[int, int] = (0, 1)):
    """video.py's reader signature: (frames, indices, total, fps, requested); the frames those
    of `part` (frames.part_slice); with `chunk`, an iterator of arrays of at most `chunk`."""
    total, fps = _packet_count(path)
    for attempt in range(2):
        idx, requested = plan_indices(plan, total, fps)
        if len(idx) == 0:
            raise NoFrames("zero decodable frames")
        mine = idx[part_slice(len(idx), chunk, part)].tolist()
        if not mine:  # a part without frames; decode_workers checks that the parts agree on the total
            return NO_FRAMES, idx, total, fps, requested
        # without `chunk`, one array after the whole pass, so that the count is checked before it leaves
        chunks = _sampled(path, mine, total, chunk or len(mine) + 1)
        try:
            first = next(chunks)
        except _CountChanged as changed:
            if attempt == 1:
                raise NoFrames(f"the decoder yielded {changed.decoded} frames on one pass and {total} on another") from None
            total = changed.decoded
            continue
        except StopIteration:
            raise NoFrames(f"decoded none of the {len(mine)} sampled frames") from None
        if chunk is None:  # one array: `first` already holds every sampled frame, and the count was checked
            return first, idx, total, fps, requested
        return _confirmed(first, chunks, total), idx, total, fps, requested
    raise AssertionError("unreachable")


def _confirmed(first, chunks, planned_total: int):
    """The chunk iterator; a count change found after chunks left is an error for the caller
    (the decode worker then reads the part again whole, chunk=None), never a wrong frame."""
    yield first
    try:
        yield from chunks
    except _CountChanged as changed:
        raise NoFrames(f"the decode yielded {changed.decoded} frames, not the {planned_total} the packets promised") from None
