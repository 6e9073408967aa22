"""The processor's resized frames as what the frame cache keeps (`frame_cache_stage=processed`).

A checkpoint's video processor first resizes the uint8 frames (NeXT-Video also center-crops),
then rescales and normalises them to floats. The resized frames are still uint8 and small
(OneVision's 384x384 is 6x less than a 720p frame, 14x less than a 1080p one), so with
`frame_cache_stage=processed` the cache keeps them instead of the decoded frames: a hit reads
a sixth of the bytes or less and skips the resize. Such an entry serves only runs whose
processor resizes the same way, so its key holds the processor's class and resize settings
and the versions of the libraries that compute the resize (processed_key).

Exactness: with this stage the processor runs in two calls through its own kwargs, the
resize (`do_rescale=False, do_normalize=False`) and then the rest (`do_resize=False,
do_center_crop=False`). transformers resizes uint8 tensors with torchvision, which returns
uint8, so the two calls give the one call's bits; `check_two_steps` proves it on the run's
own processor before the run starts (and tests/test_frame_cache_processed.py at the real
checkpoints' sizes), and a processor where it does not hold is refused with a message.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

RESIZE_SETTINGS = ("do_resize", "size", "resample", "do_center_crop", "crop_size", "do_convert_rgb")
_CALL = {"return_tensors": "pt", "do_sample_frames": False}  # frames are already sampled (see visual_encoding.py)


def processed_key(video_processor) -> str:
    """What besides the file and the frame plan decides a processed entry's bytes."""
    import torchvision
    import transformers

    doc = {"processor": type(video_processor).__name__, "transformers": transformers.__version__, "torchvision": torchvision.__version__,
           **{name: getattr(video_processor, name, None) for name in RESIZE_SETTINGS}}
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True, default=repr).encode()).hexdigest()[:16]
    return f"processed:{digest}"


def resized(video_processor, frames: np.ndarray) -> np.ndarray:
    """The processor's resized (and cropped) frames: (n, h, w, 3) uint8, the layout a decoder
    returns, so a cached entry has the decoded frames' format."""
    out = video_processor(videos=[frames], do_rescale=False, do_normalize=False, **_CALL)["pixel_values_videos"][0]
    if out.dtype != torch.uint8:
        raise ValueError(f"{type(video_processor).__name__} resizes to {out.dtype}, not uint8")
    return out.permute(0, 2, 3, 1).contiguous().numpy()


def finished(video_processor, resized_frames: np.ndarray) -> torch.Tensor:
    """The processor's output for frames it has already resized (resized())."""
    return video_processor(videos=[resized_frames], do_resize=False, do_center_crop=False, **_CALL)["pixel_values_videos"][0]


def check_two_steps(video_processor) -> None:
    """Refuse (ValueError) a processor whose two calls do not give its one call's bits, on a
    few random frames of an odd size (milliseconds)."""
    frames = np.random.default_rng(0).integers(0, 256, (2, 90, 160, 3), dtype=np.uint8)
    one = video_processor(videos=[frames], **_CALL)["pixel_values_videos"][0]
    try:
        two = finished(video_processor, resized(video_processor, frames))
    except ValueError as e:
        raise ValueError(f"frame_cache_stage=processed: {e}; use frame_cache_stage=decoded with this checkpoint") from None
    if two.shape != one.shape or not torch.equal(one, two):
        raise ValueError(f"frame_cache_stage=processed: {type(video_processor).__name__} gives other pixel values when its resize "
                         "runs apart from the rest; use frame_cache_stage=decoded with this checkpoint")
