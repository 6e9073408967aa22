"""Reuse across the questions of a video (video cache, prefix KV cache, prefetch, chunked
prefill): the answers equal those made with every reuse off, request by request, in the
harness's order; a broken video fails only its own documents; a cache hit never crosses
frame plans, pooling settings or checkpoints."""

import pytest

from conftest import FAMILIES, make_lm, make_request, write_video
from video_fixtures import write_noise_video

REUSE_ON = {"video_cache": 2, "prefix_cache": True, "prefetch": 2, "prefill_chunk": 0}
REUSE_OFF = {"video_cache": 0, "prefix_cache": False, "prefetch": 0, "prefill_chunk": 0}
GEN = {"max_new_tokens": 8, "temperature": 0}
QUESTIONS = [
    "What colour is the block?\nA. red\nB. blue\nAnswer with the option's letter.",
    "Which way does the block move?\nA. left\nB. right\nAnswer with the option's letter.",
]
FRAMES = {"lvu_num_frames": 4}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    # Solid colours: the tiny random model's answers and scores differ clearly per colour
    # (noise clips left them within 1e-3 of each other, so the check below could not see a
    # mix-up, and x264's threaded encoding moved them across its rounding from run to run).
    root = tmp_path_factory.mktemp("reuse_videos")
    return [str(write_noise_video(root / f"v{i}.mp4", colour=colour, n_frames=24 + 4 * i))
            for i, colour in enumerate([(255, 0, 0), (0, 0, 255), (255, 255, 255)])]


def interleaved(videos):
    """(video, question) pairs, the videos interleaved as a harness sorted by question would give them."""
    return [(video, q) for q in QUESTIONS for video in videos]


def generate_requests(lm, pairs, task="reuse"):
    return [make_request(lm, v, q, GEN, doc_id=i, metadata=FRAMES, task=task) for i, (v, q) in enumerate(pairs)]


def loglikelihood_requests(lm, pairs, continuation=" B"):
    return [make_request(lm, v, q, request_type="loglikelihood", continuation=continuation, doc_id=i, metadata=FRAMES,
                         task="reuse_ll") for i, (v, q) in enumerate(pairs)]


def one_by_one(lm, requests, method):
    """Each request in its own call, reuse off: no reordering or caching can play a part."""
    return [getattr(lm, method)([r])[0] for r in requests]


def records_of(path):
    import json

    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("method_args", [{}, {"rope_ext": "vcwe", "pooling": "progressive", "visual_window": 100}],
                         ids=["method_off", "method_on"])
@pytest.mark.parametrize("family", FAMILIES)
def test_reuse_on_equals_reuse_off(family, method_args, tiny_checkpoints, videos, tmp_path):
    ckpt = tiny_checkpoints[family]
    pairs = interleaved(videos)
    off = make_lm(ckpt, **REUSE_OFF, **method_args)
    expected = one_by_one(off, generate_requests(off, pairs), "generate_until")
    expected_ll = one_by_one(off, loglikelihood_requests(off, pairs), "loglikelihood")
    # answers (or, where the tiny model always says the same, scores) differ, so a mix-up would show
    assert len(set(expected)) >= 2 or len({round(x, 3) for x, _ in expected_ll}) >= 3

    record_path = tmp_path / "records.jsonl"
    on = make_lm(ckpt, **REUSE_ON, **method_args, record_path=str(record_path))
    assert on.generate_until(generate_requests(on, pairs)) == expected
    recs = records_of(record_path)
    # answered grouped by video; within a video the first question computes, the others reuse
    assert [r["video"] for r in recs] == [v for v in videos for _ in QUESTIONS]
    assert [(r["video_cache_hit"], r["prefix_cache_hit"]) for r in recs] == [(False, False), (True, True)] * 3
    assert on.video_cache.hits == 3 and on.prefix_cache.hits == 3

    ll = on.loglikelihood(loglikelihood_requests(on, pairs))
    for (got, got_greedy), (want, want_greedy) in zip(ll, expected_ll):
        assert got == pytest.approx(want, abs=1e-4) and got_greedy == want_greedy
    assert [r["prefix_cache_hit"] for r in records_of(record_path)[6:]] == [False, True] * 3
    if method_args:
        assert recs[0]["rope_applied"], "the RoPE override must be active for the prefix to matter"


@pytest.mark.parametrize("family", FAMILIES)
def test_chunked_prefill_equals_one_pass(family, tiny_checkpoints, videos):
    ckpt = tiny_checkpoints[family]
    pairs = interleaved(videos[:2])[1:3]
    one_pass = make_lm(ckpt, **REUSE_OFF)
    expected = one_by_one(one_pass, generate_requests(one_pass, pairs), "generate_until")
    expected_ll = one_pass.loglikelihood(loglikelihood_requests(one_pass, pairs))
    # chunks of 97 tokens (prompts of ~800) cut through the visual tokens (and the header) at odd places
    chunked = make_lm(ckpt, **dict(REUSE_OFF, prefill_chunk=97))
    assert chunked.generate_until(generate_requests(chunked, pairs)) == expected
    for (got, greedy), (want, want_greedy) in zip(chunked.loglikelihood(loglikelihood_requests(chunked, pairs)), expected_ll):
        assert got == pytest.approx(want, abs=1e-4) and greedy == want_greedy
    both = make_lm(ckpt, **dict(REUSE_ON, prefill_chunk=97))
    assert both.generate_until(generate_requests(both, pairs)) == expected


@pytest.mark.parametrize("family", FAMILIES)
def test_broken_video_fails_only_its_documents(family, tiny_checkpoints, videos, tmp_path):
    ckpt = tiny_checkpoints[family]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    pairs = [(videos[0], QUESTIONS[0]), (str(broken), QUESTIONS[0]), (videos[1], QUESTIONS[0]),
             (videos[0], QUESTIONS[1]), (str(broken), QUESTIONS[1]), (videos[1], QUESTIONS[1])]
    off = make_lm(ckpt, **REUSE_OFF)
    good = [i for i, (v, _) in enumerate(pairs) if v != str(broken)]
    expected = one_by_one(off, [generate_requests(off, pairs)[i] for i in good], "generate_until")

    record_path = tmp_path / "records.jsonl"
    on = make_lm(ckpt, **REUSE_ON, record_path=str(record_path))
    answers = on.generate_until(generate_requests(on, pairs))
    assert [answers[i] for i in good] == expected
    assert [answers[1], answers[4]] == ["", ""]
    failed = [r for r in records_of(record_path) if r["status"] == "failed"]
    assert sorted(r["doc_id"] for r in failed) == [1, 4]
    assert all(r["video"] == str(broken) and "unreadable or corrupt video" in r["error"] for r in failed)
    assert on.frames.prefetched >= 1, "the broken video was decoded ahead, in the background"


def test_no_hit_across_frame_plans_or_rewritten_files(tiny_checkpoints, tmp_path):
    ckpt = tiny_checkpoints["llava_onevision"]
    video = str(write_video(tmp_path / "v.mp4", n_frames=30, seed=5))
    lm = make_lm(ckpt, **REUSE_ON)
    fresh = make_lm(ckpt, **REUSE_OFF)

    def requests(model, plan):  # (frames, question) per request
        return [make_request(model, video, QUESTIONS[q], GEN, doc_id=i, metadata={"lvu_num_frames": f})
                for i, (f, q) in enumerate(plan)]

    plan = [(6, 0), (8, 0), (6, 1), (8, 1)]
    expected = one_by_one(fresh, requests(fresh, plan), "generate_until")
    assert lm.generate_until(requests(lm, plan)) == expected
    # same video, two frame plans: two groups, each encoded once and reused once, never across
    assert (lm.video_cache.hits, lm.video_cache.misses) == (2, 2)
    assert (lm.prefix_cache.hits, lm.prefix_cache.misses) == (2, 2)
    write_noise_video(tmp_path / "v.mp4", seed=9, n_frames=20)  # the file changes under the same name
    later = [(8, 0), (8, 1)]
    assert lm.generate_until(requests(lm, later)) == one_by_one(fresh, requests(fresh, later), "generate_until")
    assert lm.video_cache.hits == 3 and lm.last_video.record["video_total_frames"] == 20  # encoded again, then reused


def test_cache_keys_separate_pooling_and_checkpoints(tmp_path):
    from lmms_eval_plugin.engine.video_cache import VideoFeatureCache, VideoKey
    from lmms_eval_plugin.method.pooling import PoolingSettings

    video = str(write_video(tmp_path / "v.mp4", n_frames=8))
    base = VideoKey.of(video, "8 uniform", repr(PoolingSettings("progressive")), "ckpt-a@main")
    cache = VideoFeatureCache(4)
    cache.put(base, "features")
    assert cache.get(VideoKey.of(video, "8 uniform", repr(PoolingSettings("progressive")), "ckpt-a@main")) == "features"
    others = [
        VideoKey.of(video, "8 uniform", repr(PoolingSettings("progressive", low_stride=4)), "ckpt-a@main"),
        VideoKey.of(video, "8 uniform", repr(PoolingSettings("native")), "ckpt-a@main"),
        VideoKey.of(video, "8 uniform", repr(PoolingSettings("progressive")), "ckpt-b@main"),
        VideoKey.of(video, "16 uniform", repr(PoolingSettings("progressive")), "ckpt-a@main"),
    ]
    assert all(cache.get(k) is None for k in others)
    assert VideoKey.of(str(tmp_path / "missing.mp4"), "8 uniform", "p", "c") is None
    # least recently used goes first
    small = VideoFeatureCache(2)
    for i, k in enumerate(others[:3]):
        small.put(k, i)
    assert others[0] not in small and others[1] in small and others[2] in small


def test_prefix_cache_misses_other_prefixes():
    import torch
    from transformers import DynamicCache

    from lmms_eval_plugin.engine.prefix_cache import PrefixCache, visual_prefix_length

    video_token = 9
    ids = [1, 2, video_token, video_token, 5, 6]
    n = visual_prefix_length(ids, video_token)
    assert n == 4 and visual_prefix_length([1, 2, 3], video_token) == 0
    kv = DynamicCache()
    kv.update(torch.randn(1, 2, n, 4), torch.randn(1, 2, n, 4), 0)
    store = PrefixCache(True)
    store.store("video-a", ids[:n], kv)
    copy = store.lookup("video-a", ids[:n] + [7, 8])
    assert copy is not None and torch.equal(copy.layers[0].keys, kv.layers[0].keys)
    copy.update(torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 4), 0)  # a question continues on the copy ...
    assert kv.get_seq_length() == n  # ... the stored prefix is untouched
    assert store.lookup("video-b", ids) is None  # another video
    assert store.lookup("video-a", [1, 3, video_token, video_token, 5]) is None  # another header
    assert store.lookup("video-a", ids[:n]) is None  # nothing after the prefix to compute
    assert PrefixCache(False).lookup("video-a", ids) is None


def test_grouping_and_prefetch_order():
    from lmms_eval_plugin.engine.scheduling import group_by_video, upcoming_distinct

    keys = ["a", "b", None, "a", "c", "b", None, "a"]
    order = group_by_video(keys)
    assert order == [0, 3, 7, 1, 5, 2, 4, 6]
    assert sorted(order) == list(range(len(keys)))
    ordered = [keys[i] for i in order]
    assert upcoming_distinct(ordered, 0, 2) == ["b", "c"]
    assert upcoming_distinct(ordered, 3, 5) == ["c"]


def test_prefetch_error_surfaces_on_take():
    from lmms_eval_plugin.engine.prefetch import VideoPrefetcher
    from lmms_eval_plugin.engine.video import VideoError

    def load(name):
        if name == "bad":
            raise VideoError(name, "video file not found")
        return name.upper()

    with VideoPrefetcher(load, 2) as pre:
        pre.ahead([("x", ("x",)), ("bad", ("bad",)), ("y", ("y",))])  # depth 2: y waits
        assert pre.take("x", ("x",)) == "X"
        with pytest.raises(VideoError, match="video file not found: bad"):
            pre.take("bad", ("bad",))
        assert pre.take("y", ("y",)) == "Y"  # not prefetched: decoded on the spot
        assert pre.prefetched == 2
