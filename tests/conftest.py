"""Shared fixtures: tiny random checkpoints of both families (built from config, saved
to a temp dir, loaded by path like a hub id) and generated test videos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from lmms_eval_plugin.checkpoints.tiny_models import build_tiny_checkpoint  # noqa: E402

FAMILIES = ["llava_onevision", "llava_next_video"]


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    return {fam: build_tiny_checkpoint(fam, root / fam) for fam in FAMILIES}


def write_video(path: Path, n_frames: int = 40, size=(64, 48), fps: int = 10, seed: int = 0) -> Path:
    """A clip of moving coloured blocks over noise (frames all differ), written with PyAV."""
    import av
    import numpy as np

    rng = np.random.default_rng(seed)
    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for t in range(n_frames):
            img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
            x = (t * 3) % (w - 12)
            img[10:22, x : x + 12] = (200, 40 + 3 * t % 200, 90)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4")


def make_lm(checkpoint: Path, **model_args):
    """An lvu_ext instance on a tiny checkpoint (method off unless asked)."""
    from lmms_eval_plugin.models.lvu_ext import LvuExt

    args = {"pretrained": str(checkpoint), "rope_ext": "none", "pooling": "native", "device": "cpu"}
    args.update(model_args)
    return LvuExt(**args)


def make_request(lm, video_path: str, context: str, gen_kwargs=None, request_type="generate_until", continuation=None,
                 doc_id: int = 0, metadata=None, task: str = "unit"):
    """An Instance shaped exactly like lmms-eval's ConfigurableTask builds it."""
    from lmms_eval.api.instance import Instance

    lm.task_dict.setdefault(task, {"test": {}})["test"][doc_id] = {"video": video_path}
    doc_to_visual = lambda doc: [doc["video"]]  # noqa: E731
    meta = {"task": task, "doc_id": doc_id, "repeats": 1, "split": "test", **(metadata or {})}
    if request_type == "loglikelihood":
        arguments = (context, continuation, doc_to_visual, doc_id, task, "test")
    else:
        arguments = (context, dict(gen_kwargs or {}), doc_to_visual, doc_id, task, "test")
    return Instance(request_type=request_type, arguments=arguments, idx=0, metadata=meta)
