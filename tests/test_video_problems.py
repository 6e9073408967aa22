"""Decided behaviour per video problem, at the decoder level (the CLI test covers the
same files end to end)."""

import pytest

from lmms_eval_plugin.engine import video as video_mod
from lmms_eval_plugin.engine.video import FramePlan, VideoError, load_video
from video_fixtures import write_no_frames_video, write_noise_video, write_vfr_video


@pytest.mark.parametrize("reader", ["auto", "sequential"])
def test_vfr_is_sampled_by_frame_index(tmp_path, reader):
    path = str(write_vfr_video(tmp_path / "vfr.mp4", n_frames=16))
    video = load_video(path, FramePlan(num_frames=6), reader=reader)
    assert video.total_frames == 16 and video.indices == [0, 3, 6, 9, 12, 15]


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


def test_sequential_reader_when_the_sparse_one_fails(tmp_path, monkeypatch):
    path = str(write_noise_video(tmp_path / "odd.mp4", size=(63, 47), n_frames=6))

    def fails(*args, **kwargs):
        raise RuntimeError("cannot open this")

    monkeypatch.setattr(video_mod.sparse_decode, "decode_sparse", fails)
    video = load_video(path, FramePlan(num_frames=4))
    assert video.backend == "pyav_sequential" and video.frames.shape == (4, 47, 63, 3)
