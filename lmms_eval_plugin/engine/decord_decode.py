"""decord, only when asked (`decoder=decord`): the reader of lmms-eval's legacy built-in
`llava_onevision`, for comparing with numbers made by it. Not on the default path: decord
is unmaintained since 2021, has no aarch64 wheel, returns wrong frames on some files (HEVC
shifted by several frames, open GOP, MPEG-TS, MPEG-4 Part 2 with B-frames, intra refresh;
dmlc/decord #325, #365, #195, #91) and can hang in native code that no signal reaches
(#269, #373, #375). docs/decoding.md has the table measured against FFmpeg."""

from __future__ import annotations

import itertools

from lmms_eval_plugin.engine.frames import NO_FRAMES, NoFrames, check_complete, part_slice, plan_indices

NAME = "decord"
INSTALL_HINT = "decoder=decord needs decord (pip install 'lvu_ext[decord]'; x86_64 wheels only)"


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("decord") is not None


def _listed_frames(path: str) -> tuple[int, str]:
    """(frames the container lists, its format), read from the header without decoding."""
    import av

    with av.open(path) as container:
        streams = container.streams.video
        return (int(streams[0].frames or 0) if streams else 0), container.format.name


def decode_decord(path: str, plan, chunk: int | None = None, part: tuple[int, int] = (0, 1)):
    """video.py's reader signature. `chunk`: the frames come as a generator of arrays of at
    most `chunk` frames; `part`: only that part's frames (part_slice)."""
    try:
        from decord import VideoReader, cpu
    except ImportError:
        raise NoFrames(INSTALL_HINT) from None

    vr = VideoReader(path, ctx=cpu(0), num_threads=1)
    total, fps = len(vr), float(vr.get_avg_fps() or 0.0)
    check_complete(total, *_listed_frames(path))
    idx, requested = plan_indices(plan, total, fps)
    if len(idx) == 0:
        raise NoFrames("zero decodable frames")
    mine = idx[part_slice(len(idx), chunk, part)]
    if chunk is None or len(mine) == 0:
        return vr.get_batch(mine.tolist()).asnumpy() if len(mine) else NO_FRAMES, idx, total, fps, requested
    first = vr.get_batch(mine[:chunk].tolist()).asnumpy()  # decode errors surface here
    rest = (vr.get_batch(mine[s : s + chunk].tolist()).asnumpy() for s in range(chunk, len(mine), chunk))
    return itertools.chain([first], rest), idx, total, fps, requested
