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


def test_decoders_agree(tmp_path):
    path = str(write_video(tmp_path / "v.mp4", n_frames=30))
    from lmms_eval_plugin.engine import video as video_mod

    plan = FramePlan(num_frames=6)
    d_frames, d_idx, d_total, _, _ = video_mod._decode_decord(path, plan)
    p_frames, p_idx, p_total, _, _ = video_mod._decode_pyav(path, plan)
    assert d_total == p_total == 30 and d_idx.tolist() == p_idx.tolist()
    assert d_frames.shape == p_frames.shape
    assert np.abs(d_frames.astype(int) - p_frames.astype(int)).mean() < 3  # same frames, decoder rounding aside


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
