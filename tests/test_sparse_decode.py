"""The H.264/HEVC reader that skips unneeded non-reference frames (engine/sparse_decode.py)
against the sequential decode, the definition of a frame (a plain PyAV decode of every
frame, written here independently of the readers): same frame count, indices and pixels,
on encodes with B-frames as real footage has them (x264 presets), in MP4 and MKV.
tests/test_exact_frames.py holds the real-footage corpus against the FFmpeg binary."""

import numpy as np
import pytest

from lmms_eval_plugin.bench.realistic_clip import ClipSpec, ensure_realistic_clip
from lmms_eval_plugin.engine import sparse_decode
from lmms_eval_plugin.engine.frames import NotProvable
from lmms_eval_plugin.engine.sequential_decode import decode_sequential
from lmms_eval_plugin.engine.video import FramePlan, load_video, plan_indices

CLIPS = {
    "veryfast_mp4": ClipSpec("veryfast_mp4", 320, 240, 8, preset="veryfast", keyframe_s=2),
    "medium_mkv": ClipSpec("medium_mkv", 320, 240, 8, preset="medium", keyframe_s=3, container="mkv"),
    # a keyframe every second, so that 3 or 7 sampled frames leave whole GOPs to seek over
    "short_gops_mp4": ClipSpec("short_gops_mp4", 320, 240, 12, preset="medium", keyframe_s=1),
}
PLANS = [FramePlan(3), FramePlan(7), FramePlan(64), FramePlan(None, fps=2.0, max_frames=512), FramePlan(500)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sparse_clips")
    return {name: str(ensure_realistic_clip(folder, spec)) for name, spec in CLIPS.items()}


def _every_frame(path: str):
    """The sequential decode, plainly: every frame in the decoder's order, and the average rate."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        return [f.to_ndarray(format="rgb24") for f in container.decode(stream)], float(stream.average_rate)


def _oracle(path: str, plan):
    frames, fps = _every_frame(path)
    idx, requested = plan_indices(plan, len(frames), fps)
    return np.stack([frames[i] for i in idx]), idx, len(frames), fps, requested


def _b_frames(path: str) -> int:
    import av
    from av.video.frame import PictureType

    with av.open(path) as container:
        return sum(frame.pict_type == PictureType.B for frame in container.decode(video=0))


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("plan", PLANS, ids=lambda p: p.describe().replace(" ", "_"))
def test_same_indices_and_pixels_as_the_sequential_decode(clips, clip, plan):
    path = clips[clip]
    assert _b_frames(path) > 0  # the frames it may skip exist
    frames, idx, total, fps, requested = sparse_decode.decode_sparse(path, plan)
    d_frames, d_idx, d_total, d_fps, d_requested = _oracle(path, plan)
    assert (total, fps, requested) == (d_total, d_fps, d_requested)
    assert idx.tolist() == d_idx.tolist()
    assert frames.shape == d_frames.shape and np.array_equal(frames, d_frames)


@pytest.mark.parametrize("backend", ["pyav_sparse", "pyav_sequential"])
@pytest.mark.parametrize("parts", [2, 3, 8])
def test_parts_join_to_the_whole(clips, backend, parts):
    """Decode workers split one video into parts of whole processor chunks (part_slice)."""
    decode = {"pyav_sparse": sparse_decode.decode_sparse, "pyav_sequential": decode_sequential}[backend]
    path, plan = clips["short_gops_mp4"], FramePlan(40)
    whole, idx, *_ = _oracle(path, plan)
    got = []
    for k in range(parts):
        frames, part_idx, *_ = decode(path, plan, chunk=16, part=(k, parts))
        assert part_idx.tolist() == idx.tolist()  # every part knows the whole video's indices
        got.extend(c for c in ([frames] if isinstance(frames, np.ndarray) else frames) if len(c))
    assert [len(c) for c in got] == [16, 16, 8]
    assert np.array_equal(np.concatenate(got), whole)


def test_part_slices_are_whole_chunks_covering_all():
    from lmms_eval_plugin.engine.frames import part_slice

    for n, chunk, parts in [(40, 16, 2), (40, 16, 3), (128, 16, 2), (5, 16, 2), (300, 16, 8), (17, None, 2)]:
        slices = [part_slice(n, chunk, (k, parts)) for k in range(parts)]
        assert [i for s in slices for i in range(n)[s]] == list(range(n))
        assert all(s.start % (chunk or 9) == 0 for s in slices if s.start < n)


def test_chunks_join_to_the_whole(clips):
    path = clips["veryfast_mp4"]
    whole, *_ = sparse_decode.decode_sparse(path, FramePlan(40))
    chunks, *_ = sparse_decode.decode_sparse(path, FramePlan(40), chunk=16)
    chunks = list(chunks)
    assert [len(c) for c in chunks] == [16, 16, 8] and np.array_equal(np.concatenate(chunks), whole)


@pytest.mark.parametrize("clip", CLIPS)
def test_these_encodes_have_frames_to_skip(clips, clip):
    """The premise of the speed-up, on the encodes the pixel tests use: told to skip
    non-reference frames, FFmpeg's H.264 decoder returns markedly fewer frames."""
    import av

    def decoded(skip: str) -> int:
        with av.open(clips[clip]) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_type = "NONE"
            stream.codec_context.skip_frame = skip
            return sum(1 for _ in container.decode(stream))

    assert decoded("NONREF") < 0.8 * decoded("DEFAULT")


def test_other_codecs_go_to_the_sequential_reader(tmp_path):
    """MPEG-4 Part 2 (not H.264): this reader declines it and the sequential decode reads it."""
    import av

    path = str(tmp_path / "mpeg4.mp4")
    with av.open(path, "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for t in range(12):
            frame = np.full((48, 64, 3), 20 * t, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(NotProvable):
        sparse_decode.decode_sparse(path, FramePlan(4))
    video = load_video(path, FramePlan(4))
    assert video.backend == "pyav_sequential" and np.array_equal(video.frames, _oracle(path, FramePlan(4))[0])


def test_h264_files_take_it(clips):
    video = load_video(clips["medium_mkv"], FramePlan(8))
    assert video.backend == "pyav_sparse" and video.frames.shape == (8, 240, 320, 3)
