"""Decided behaviour per video problem, at the decoder level (the CLI test covers the
same files end to end)."""

import pytest

from lmms_eval_plugin.engine import video as video_mod
from lmms_eval_plugin.engine.video import FramePlan, VideoError, load_video
from video_fixtures import write_no_frames_video, write_noise_video, write_vfr_video


def test_vfr_is_sampled_by_frame_index_by_both_decoders(tmp_path):
    path = str(write_vfr_video(tmp_path / "vfr.mp4", n_frames=16))
    plan = FramePlan(num_frames=6)
    _, d_idx, d_total, _, _ = video_mod._decode_decord(path, plan)
    _, p_idx, p_total, _, _ = video_mod._decode_pyav(path, plan)
    assert d_total == p_total == 16 and d_idx.tolist() == p_idx.tolist() == [0, 3, 6, 9, 12, 15]


def test_no_video_frames_is_its_own_reason(tmp_path):
    path = str(write_no_frames_video(tmp_path / "empty.mp4"))
    with pytest.raises(VideoError) as err:
        load_video(path, FramePlan(num_frames=4))
    assert err.value.reason.startswith("no decodable video frames") and err.value.path == path


def test_truncated_file_fails_whole(tmp_path):
    good = write_noise_video(tmp_path / "good.mp4", n_frames=8)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(VideoError) as err:
        load_video(str(cut), FramePlan(num_frames=4))
    assert err.value.reason.startswith("unreadable or corrupt video")


def test_pyav_fallback_when_decord_fails(tmp_path, monkeypatch):
    path = str(write_noise_video(tmp_path / "odd.mp4", size=(63, 47), n_frames=6))

    def fails(*args, **kwargs):
        raise RuntimeError("cannot open this")

    monkeypatch.setattr(video_mod, "decode_sparse", fails)
    monkeypatch.setattr(video_mod, "_decode_decord", fails)
    video = load_video(path, FramePlan(num_frames=4))
    assert video.backend == "pyav" and video.frames.shape == (4, 47, 63, 3)
