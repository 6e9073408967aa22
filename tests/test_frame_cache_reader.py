"""The frame cache in the reader (engine/video.py + engine/frame_cache.py): what a hit
returns is what the decode returns, bit for bit, whole or in workers' parts and chunks;
an uncached read is the oracle."""

import os

import numpy as np
import pytest

from conftest import write_video
from lmms_eval_plugin.engine.frame_cache import FrameCache
from lmms_eval_plugin.engine.video import FramePlan, load_video


def _joined(frames) -> np.ndarray:
    return frames if isinstance(frames, np.ndarray) else np.concatenate([c for c in frames if len(c)])


@pytest.fixture()
def clip(tmp_path):
    return str(write_video(tmp_path / "v.mp4", n_frames=40))


@pytest.mark.parametrize("reader", ["auto", "sequential"])
def test_cold_then_warm_equals_uncached(tmp_path, clip, reader):
    plan, cache = FramePlan(12), FrameCache(str(tmp_path / "fc"))
    plain = load_video(clip, plan, reader=reader)
    cold = load_video(clip, plan, reader=reader, cache=cache)
    warm = load_video(clip, plan, reader=reader, cache=cache)
    assert (plain.frame_cache, cold.frame_cache, warm.frame_cache) == ("off", "stored", "hit")
    for video in (cold, warm):
        assert np.array_equal(video.frames, plain.frames) and video.indices == plain.indices
        assert (video.total_frames, video.avg_fps, video.requested) == (plain.total_frames, plain.avg_fps, plain.requested)


def test_parts_stored_by_one_split_serve_another(tmp_path, clip):
    """Workers split a video into parts of whole chunks; a cache filled by two parts serves
    three, and the whole."""
    plan, cache = FramePlan(40), FrameCache(str(tmp_path / "fc"))
    whole = load_video(clip, plan).frames
    for k in range(2):
        part = load_video(clip, plan, chunk=8, part=(k, 2), cache=cache)
        assert part.frame_cache == "stored"
        _joined(part.frames)  # the chunks are stored as the caller consumes them
    got = []
    for k in range(3):
        part = load_video(clip, plan, chunk=8, part=(k, 3), cache=cache)
        assert part.frame_cache == "hit"
        got.append(_joined(part.frames))
    assert np.array_equal(np.concatenate(got), whole)
    assert np.array_equal(load_video(clip, plan, cache=cache).frames, whole)


def test_chunked_miss_stores_as_it_passes(tmp_path, clip):
    plan, cache = FramePlan(20), FrameCache(str(tmp_path / "fc"))
    cold = load_video(clip, plan, chunk=8, cache=cache)
    joined = _joined(cold.frames)  # consuming the chunks stores them
    warm = load_video(clip, plan, cache=cache)
    assert warm.frame_cache == "hit" and np.array_equal(warm.frames, joined)


def test_other_plan_and_changed_file_miss(tmp_path, clip):
    cache = FrameCache(str(tmp_path / "fc"))
    load_video(clip, FramePlan(8), cache=cache)
    assert load_video(clip, FramePlan(9), cache=cache).frame_cache == "stored"
    assert load_video(clip, FramePlan(8), reader="decord", cache=cache).frame_cache == "stored" if _has_decord() else True
    write_video(clip, n_frames=30)  # another video at the same path
    os.utime(clip, ns=(1, 1))
    fresh = load_video(clip, FramePlan(8), cache=cache)
    assert fresh.frame_cache == "stored" and fresh.total_frames == 30


def test_unwritable_folder_degrades_to_no_caching(tmp_path, clip):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = FrameCache(str(blocker / "fc"))
    video = load_video(clip, FramePlan(8), cache=cache)
    assert video.frame_cache == "miss" and np.array_equal(video.frames, load_video(clip, FramePlan(8)).frames)


def _has_decord() -> bool:
    import importlib.util

    return importlib.util.find_spec("decord") is not None


@pytest.mark.parametrize("chunk", [None, 8])
def test_a_hit_reports_the_decode_it_saved(tmp_path, clip, chunk):
    """A hit carries what the stored decode took (the end-of-run line's seconds saved): the
    sum over the parts that stored it."""
    plan, cache = FramePlan(40), FrameCache(str(tmp_path / "fc"))
    stored = []
    for k in range(2):
        part = load_video(clip, plan, chunk=chunk, part=(k, 2), cache=cache)
        _joined(part.frames)  # a chunked decode happens as the caller consumes it
        assert part.frame_cache == "stored" and part.decode_s > 0
        stored.append(part.decode_s)
    whole = load_video(clip, plan, cache=cache)
    assert whole.frame_cache == "hit" and whole.decode_s == pytest.approx(sum(stored), abs=1e-3)
    first = load_video(clip, plan, chunk=chunk, part=(0, 2), cache=cache)
    assert first.frame_cache == "hit" and first.decode_s == pytest.approx(stored[0], abs=1e-3)
