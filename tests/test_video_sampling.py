"""Frame sampling (METHOD.md section 3) on generated videos."""

import numpy as np
import pytest

from conftest import write_video
from lmms_eval_plugin.engine.video import FramePlan, VideoError, load_video, plan_indices, uniform_indices


@pytest.mark.parametrize("total,n", [(40, 8), (40, 32), (1000, 256), (7, 7), (513, 512)])
def test_uniform_is_numpy_linspace(total, n):
    assert uniform_indices(total, n).tolist() == np.linspace(0, total - 1, n, dtype=int).tolist()


def test_fps_with_cap():
    # 40 frames at 10 fps = 4 s: 1 fps -> 4 frames, one every 10
    idx, requested = plan_indices(FramePlan(None, fps=1.0, max_frames=512), 40, 10.0)
    assert idx.tolist() == [0, 10, 20, 30] and requested == 4
    # 5 fps would be 20 frames; capped at 8 -> 8 uniform frames
    idx, requested = plan_indices(FramePlan(None, fps=5.0, max_frames=8), 40, 10.0)
    assert idx.tolist() == np.linspace(0, 39, 8, dtype=int).tolist() and requested == 8


def test_readers_agree(tmp_path):
    """The sparse reader, the sequential one and (where installed) decord see one video alike."""
    path = str(write_video(tmp_path / "v.mp4", n_frames=30))
    plan = FramePlan(num_frames=6)
    auto = load_video(path, plan)
    sequential = load_video(path, plan, reader="sequential")
    assert auto.backend == "pyav_sparse" and sequential.backend == "pyav_sequential"
    assert auto.total_frames == sequential.total_frames == 30 and auto.indices == sequential.indices
    assert np.array_equal(auto.frames, sequential.frames)
    pytest.importorskip("decord")
    decord = load_video(path, plan, reader="decord")
    assert decord.total_frames == 30 and decord.indices == auto.indices
    assert np.abs(decord.frames.astype(int) - auto.frames.astype(int)).mean() < 3  # same frames, decoder rounding aside


def test_short_video_uses_what_exists(tmp_path):
    path = str(write_video(tmp_path / "short.mp4", n_frames=12))
    video = load_video(path, FramePlan(num_frames=64))
    assert len(video.indices) == 12 and video.requested == 64 and video.short
    assert video.indices == list(range(12))


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(VideoError) as err:
        load_video(str(tmp_path / "nope.mp4"), FramePlan())
    assert "not found" in str(err.value) and "nope.mp4" in str(err.value)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(VideoError) as err:
        load_video(str(bad), FramePlan())
    assert "bad.mp4" in str(err.value) and "corrupt" in str(err.value)
