"""A run with the frame cache answers exactly as one without it: generated answers and
log-likelihoods, cache cold then warm, both families, method on and off (the oracle is the
same checkpoint with frame_cache off)."""

import pytest

from conftest import FAMILIES, make_lm, make_request

METHOD = {"off": {}, "on": {"rope_ext": "vcwe", "pooling": "progressive", "visual_window": 8}}
CONTEXT = "What happens?\nA. left\nB. right\nAnswer with the option's letter."


def _answers(lm, video: str):
    gen = lm.generate_until([make_request(lm, video, CONTEXT, {"max_new_tokens": 6, "do_sample": False}, doc_id=0)])
    ll = lm.loglikelihood([make_request(lm, video, CONTEXT, request_type="loglikelihood", continuation=" A", doc_id=1)])
    return gen, ll, dict(lm.frames.frame_cache_states)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", METHOD)
def test_cold_and_warm_cache_answer_as_no_cache(tiny_checkpoints, sample_video, tmp_path, family, method):
    args = dict(num_frames=8, video_cache=0, prefix_cache=False, **METHOD[method])
    plain = _answers(make_lm(tiny_checkpoints[family], **args), str(sample_video))
    cache = str(tmp_path / "frames")
    cold = _answers(make_lm(tiny_checkpoints[family], frame_cache=cache, **args), str(sample_video))
    warm = _answers(make_lm(tiny_checkpoints[family], frame_cache=cache, **args), str(sample_video))
    # cold: the first request decodes and stores, the second (same video, video_cache=0) reads it back; warm: both read
    assert plain[2] == {"off": 2} and cold[2] == {"stored": 1, "hit": 1} and warm[2] == {"hit": 2}
    assert cold[:2] == plain[:2] and warm[:2] == plain[:2]


def test_a_cache_folder_that_cannot_be_written_costs_nothing_but_the_cache(tiny_checkpoints, sample_video, tmp_path):
    """A frame_cache the run cannot write (here: its parent is a regular file, as when a mount
    went away; permission bits do not stop root): every request answers as without the cache,
    decoded and not stored."""
    args, checkpoint = dict(num_frames=8, video_cache=0, prefix_cache=False), tiny_checkpoints["llava_onevision"]
    plain = _answers(make_lm(checkpoint, **args), str(sample_video))
    blocker = tmp_path / "not_a_folder"
    blocker.write_bytes(b"x")
    unwritable = _answers(make_lm(checkpoint, frame_cache=str(blocker / "frames"), **args), str(sample_video))
    assert unwritable[2] == {"miss": 2} and unwritable[:2] == plain[:2]
