"""Out of memory in the vision tower or in generate ends the run (non-zero exit) with a
message naming the document, the frame count and visual tokens, and settings that fit."""

import pytest
import torch

from conftest import make_lm, make_request
from lmms_eval_plugin.engine.video_cache import VideoFeatureCache
from lmms_eval_plugin.failures.errors import OutOfMemoryRunError, RequestFailedError
from lmms_eval_plugin.method.pooling import PoolingSettings, visual_token_count

GEN = {"max_new_tokens": 2, "temperature": 0}


def raiser(exc):
    def fail(*args, **kwargs):
        raise exc

    return fail


@pytest.fixture(scope="module")
def lm(tiny_checkpoints):
    return make_lm(tiny_checkpoints["llava_onevision"], num_frames=8, pooling="native")


@pytest.mark.parametrize("where,stage", [("vision", "in the vision tower"), ("generate", "in generate")])
@pytest.mark.parametrize("exc", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
                                 RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")])
def test_oom_names_frames_tokens_and_what_fits(lm, sample_video, monkeypatch, where, stage, exc):
    target = (lm.model.model.vision_tower, "forward") if where == "vision" else (lm.model, "generate")
    monkeypatch.setattr(*target, raiser(exc))
    lm.video_cache = VideoFeatureCache(0)  # no cached features: the vision tower must run
    request = make_request(lm, str(sample_video), "What happens?", GEN, doc_id=7, task="oomtask")
    with pytest.raises(OutOfMemoryRunError) as err:
        lm.generate_until([request])
    assert isinstance(err.value, SystemExit)  # lmms-eval cannot swallow it into an exit status 0
    tokens = visual_token_count("llava_onevision", 8, PoolingSettings("native"), 27, 2)
    message = str(err.value)
    assert message.startswith(f"lvu_ext: oomtask doc 7: out of memory {stage} with 8 frames = {tokens} visual tokens")
    progressive = visual_token_count("llava_onevision", 8, PoolingSettings("progressive"), 27, 2)
    half = visual_token_count("llava_onevision", 4, PoolingSettings("native"), 27, 2)
    assert f"pooling=progressive ({progressive} visual tokens at 8 frames)" in message
    assert f"num_frames=4 or a smaller *_lvu_f* task ({half} visual tokens)" in message
    assert ("vision_batch=8" in message) == (where == "vision")


def test_other_errors_pass_through(lm, sample_video, monkeypatch):
    monkeypatch.setattr(lm.model, "generate", raiser(RuntimeError("shape mismatch")))
    lm.video_cache = VideoFeatureCache(0)  # no cached features: the vision tower must run
    # not an out-of-memory message: the request guard's own failure line (request_guard.py)
    with pytest.raises(RequestFailedError, match="RuntimeError: shape mismatch") as err:
        lm.generate_until([make_request(lm, str(sample_video), "What happens?", GEN)])
    assert "out of memory" not in str(err.value)
