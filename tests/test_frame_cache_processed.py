"""frame_cache_stage=processed: the cache keeps the processor's resized frames.

Oracles: the processor's own one-step call (its two steps must give the same bits, at the
real checkpoints' sizes), and the same checkpoint run with frame_cache off (answers and
log-likelihoods, cold then warm, both families, with decode-only processes and with decode
workers)."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoProcessor

from conftest import FAMILIES, make_lm, make_request, write_video
from lmms_eval_plugin.engine.processed_frames import check_two_steps, finished, processed_key, resized

# the published checkpoints' video processor sizes (llava-hf/llava-onevision-qwen2-7b-ov-hf,
# llava-hf/LLaVA-NeXT-Video-7B-hf); the tiny fixtures shrink them
REAL_SIZES = {"llava_onevision": {"size": {"height": 384, "width": 384}},
              "llava_next_video": {"size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336}}}
CONTEXT = "What happens?\nA. left\nB. right\nAnswer with the option's letter."


def _processor(checkpoint, **overrides):
    return AutoProcessor.from_pretrained(str(checkpoint), **overrides).video_processor


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("real_size", [False, True])
def test_two_steps_give_the_one_call_bits(tiny_checkpoints, family, real_size):
    processor = _processor(tiny_checkpoints[family], **(REAL_SIZES[family] if real_size else {}))
    frames = np.random.default_rng(1).integers(0, 256, (4, 720, 1280, 3), dtype=np.uint8)
    one = processor(videos=[frames], return_tensors="pt", do_sample_frames=False)["pixel_values_videos"][0]
    small = resized(processor, frames)
    assert small.dtype == np.uint8 and small.shape == (4, *one.shape[2:], 3)
    assert torch.equal(finished(processor, small), one)
    check_two_steps(processor)


def test_the_key_follows_the_resize_settings(tiny_checkpoints):
    checkpoint = tiny_checkpoints["llava_onevision"]
    tiny, real = _processor(checkpoint), _processor(checkpoint, **REAL_SIZES["llava_onevision"])
    assert processed_key(tiny) == processed_key(_processor(checkpoint)) != processed_key(real)
    assert processed_key(tiny) != processed_key(_processor(tiny_checkpoints["llava_next_video"]))


@pytest.fixture(scope="module")
def wide_video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("wide") / "wide.mp4", size=(320, 240))


def _answers(lm, video: str):
    gen = lm.generate_until([make_request(lm, video, CONTEXT, {"max_new_tokens": 6, "do_sample": False}, doc_id=0)])
    ll = lm.loglikelihood([make_request(lm, video, CONTEXT, request_type="loglikelihood", continuation=" A", doc_id=1)])
    return gen, ll, dict(lm.frames.frame_cache_states)


def _entries(cache) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(cache.glob("*/meta.json"))]


METHOD = {"off": {}, "on": {"rope_ext": "vcwe", "pooling": "progressive", "visual_window": 8}}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("decode_workers,method", [(0, "off"), (0, "on"), (2, "on")])
def test_cold_and_warm_processed_cache_answer_as_no_cache(tiny_checkpoints, wide_video, tmp_path, family, decode_workers, method):
    """decode_workers=0: the decode processes return frames and the processor's two steps run
    in the main process; 2: two workers run them on a half of the video each (4 frames per
    processor chunk)."""
    args = dict(num_frames=8, video_cache=0, prefix_cache=False, decode_workers=decode_workers, vision_batch=4, **METHOD[method])
    checkpoint = tiny_checkpoints[family]
    plain = _answers(make_lm(checkpoint, **args), str(wide_video))
    cache = tmp_path / "frames"
    cold = _answers(make_lm(checkpoint, frame_cache=str(cache), frame_cache_stage="processed", **args), str(wide_video))
    warm = _answers(make_lm(checkpoint, frame_cache=str(cache), frame_cache_stage="processed", **args), str(wide_video))
    assert cold[2] == {"stored": 1, "hit": 1} and warm[2] == {"hit": 2}
    assert cold[:2] == plain[:2] and warm[:2] == plain[:2]
    pixels = _processor(checkpoint)(videos=[np.zeros((1, 240, 320, 3), np.uint8)], return_tensors="pt",
                                    do_sample_frames=False)["pixel_values_videos"][0]
    (entry,) = _entries(cache)  # only the processed entry: the decoded frames were not stored
    pieces = sorted(p.name for p in cache.glob("*/frames_*.npy"))
    assert pieces == ["frames_0_4.npy", "frames_4_8.npy"]  # one piece per processor chunk, whichever process made it
    assert entry["source"]["plan"].endswith(processed_key(_processor(checkpoint)))
    assert entry["frame_shape"] == [*pixels.shape[2:], 3]


def test_decoded_entries_serve_a_processed_run(tiny_checkpoints, wide_video, tmp_path):
    """A cache filled with decoded frames (check-videos --fill-cache, or a decoded-stage run)
    serves a processed run without decoding; that run stores the processed entry beside it,
    which the next run reads."""
    checkpoint = tiny_checkpoints["llava_onevision"]
    args = dict(num_frames=8, video_cache=0, prefix_cache=False, frame_cache=str(tmp_path / "frames"))
    decoded = _answers(make_lm(checkpoint, **args), str(wide_video))
    assert decoded[2] == {"stored": 1, "hit": 1} and len(_entries(tmp_path / "frames")) == 1
    first = _answers(make_lm(checkpoint, frame_cache_stage="processed", **args), str(wide_video))
    then = _answers(make_lm(checkpoint, frame_cache_stage="processed", **args), str(wide_video))
    assert first[2] == {"hit": 2} and then[2] == {"hit": 2}
    assert first[:2] == decoded[:2] and then[:2] == decoded[:2]
    shapes = [e["frame_shape"] for e in _entries(tmp_path / "frames")]
    assert len(shapes) == 2 and [54, 54, 3] in shapes  # the processed entry (the tiny OneVision's size) beside the decoded one


def test_a_processor_whose_resize_is_not_uint8_is_refused_before_the_run(tiny_checkpoints, sample_video, tmp_path):
    """A processor that resizes to floats (its two steps would round what its one call keeps)
    cannot use the processed stage: the run refuses it, naming the arg and the way out."""
    from lmms_eval_plugin.model_args import ModelArgError

    processor = _processor(tiny_checkpoints["llava_onevision"])
    resize = processor.resize
    processor.resize = lambda image, *a, **kw: resize(image, *a, **kw).float() + 0.25
    with pytest.raises(ValueError, match="not uint8"):
        resized(processor, np.zeros((1, 90, 160, 3), np.uint8))
    with pytest.raises(ValueError, match="frame_cache_stage=decoded"):
        check_two_steps(processor)
    from lmms_eval_plugin.engine.frame_source import FrameSource
    from lmms_eval_plugin.model_args import LvuArgs

    args = LvuArgs(pretrained="unused", frame_cache=str(tmp_path / "fc"), frame_cache_stage="processed", decode_workers=0)
    with pytest.raises(ModelArgError, match="model arg frame_cache_stage=processed"):
        FrameSource(args, processor)
