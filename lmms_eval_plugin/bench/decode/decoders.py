"""The frame readers `lvu-ext bench --decode` compares. Each samples `n` uniform frames as
numpy linspace over the decoded frames (lmms-eval's convention, lvu_ext's frame plan)
and returns (indices, frames as (n, H, W, 3) uint8); a reader that cannot say which
indices it read returns None for them.

  pyav_sparse      lvu_ext's fast reader of H.264/HEVC in MP4/MOV/MKV/FLV (engine/sparse_decode.py):
                   PyAV, one thread, skipping the non-reference frames no sampled frame needs
                   and seeking past GOPs without one; declines what it cannot prove exact
  pyav_sequential  lvu_ext's exact reader of everything else (engine/sequential_decode.py):
                   FFmpeg's sequential decode, a packet-counting pass then one decoding pass
  auto             lvu_ext's default (engine/video.py): pyav_sparse where it is exact, else pyav_sequential
  decord           decord, one thread (decoder=decord, optional)
  pyav             PyAV, a decoding pass to count then a converting pass
  pyav_threaded    the same two passes with FFmpeg's frame+slice threading
  lmms_eval        lmms-eval's own `read_video` (PyAV, threaded; what its built-in models use)
  torchcodec       PyTorch's decoder (needs a system FFmpeg; optional)
"""

from __future__ import annotations

import numpy as np

from lmms_eval_plugin.engine.video import FramePlan, uniform_indices


def plan_of(frames: int | str) -> FramePlan:
    """A frame count (`32`), or a rate plan (`fps1`: one frame per second, as `fps=1`)."""
    if isinstance(frames, str) and frames.startswith("fps"):
        return FramePlan(num_frames=None, fps=float(frames[3:]))
    return FramePlan(int(frames))


def _count_only(n: int | str) -> int:
    if isinstance(n, str):
        raise ValueError(f"samples a frame count, not a rate plan ({n})")
    return n


def _decord(path: str, n: int):
    from lmms_eval_plugin.engine.decord_decode import decode_decord

    frames, idx, *_ = decode_decord(path, plan_of(n))
    return [int(i) for i in idx], frames


def _pyav_sparse(path: str, n: int):
    from lmms_eval_plugin.engine.sparse_decode import decode_sparse

    frames, idx, *_ = decode_sparse(path, plan_of(n))
    return [int(i) for i in idx], frames


def _pyav_sequential(path: str, n: int):
    from lmms_eval_plugin.engine.sequential_decode import decode_sequential

    frames, idx, *_ = decode_sequential(path, plan_of(n))
    return [int(i) for i in idx], frames


def _auto(path: str, n: int):
    from lmms_eval_plugin.engine.video import load_video

    video = load_video(path, plan_of(n))
    return video.indices, video.frames


def _pyav(path: str, n: int, threaded: bool = False):
    import av

    def opened():
        container = av.open(path)
        if threaded:
            container.streams.video[0].thread_type = "AUTO"
        return container

    with opened() as container:
        total = sum(1 for _ in container.decode(container.streams.video[0]))
    idx = uniform_indices(total, _count_only(n))
    wanted = set(idx.tolist())
    with opened() as container:
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(container.streams.video[0])) if i in wanted]
    return [int(i) for i in idx], np.stack(frames)


def _lmms_eval(path: str, n: int):
    from lmms_eval.models.model_utils.load_video import read_video

    return None, read_video(path, num_frm=_count_only(n))


def _torchcodec(path: str, n: int):
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(path, dimension_order="NHWC")
    idx = uniform_indices(decoder.metadata.num_frames, _count_only(n))
    return [int(i) for i in idx], decoder.get_frames_at(indices=idx.tolist()).data.numpy()


BACKENDS = {
    "decord": _decord,
    "pyav_sparse": _pyav_sparse,
    "pyav_sequential": _pyav_sequential,
    "auto": _auto,
    "pyav": _pyav,
    "pyav_threaded": lambda path, n: _pyav(path, n, threaded=True),
    "lmms_eval": _lmms_eval,
    "torchcodec": _torchcodec,
}


def available(name: str) -> str | None:
    """None when the backend can run here, else why not."""
    import importlib.util

    module = {"decord": "decord", "torchcodec": "torchcodec", "lmms_eval": "lmms_eval"}.get(name, "av")
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    if name == "torchcodec":
        try:
            import torchcodec.decoders  # noqa: F401  loads FFmpeg's shared libraries
        except Exception as exc:  # no system FFmpeg, or one torchcodec does not support
            return f"torchcodec cannot load FFmpeg ({type(exc).__name__}: {str(exc)[:160]})"
    return None
