"""Frames -> visual tokens for the language model, chunk by chunk.

The stock transformers path sends all frames through the vision tower at once and keeps
every layer's hidden states. Here frames are preprocessed and encoded `vision_batch` at a
time, only the feature layer the model uses is captured, and each chunk is pooled (with
its own per-frame strides) before the next one starts, so peak memory is one chunk's
full grid plus the pooled tokens. With native strides the result equals the model's own
`get_video_features` (the per-family pooling reproduces it exactly).
"""

from __future__ import annotations

import torch

from lmms_eval_plugin.checkpoints.families import Family, grid_side
from lmms_eval_plugin.method.pooling import pool_video


def _vision_features(model, pixels: torch.Tensor) -> torch.Tensor:
    """Selected vision-tower layer for a chunk of frames: (f, grid*grid, D_vision)."""
    config = model.config
    layer = config.vision_feature_layer
    out = model.model.vision_tower(pixels, output_hidden_states=layer, return_dict=True)
    if isinstance(layer, int):
        feats = out.hidden_states[layer]
    else:
        feats = torch.cat([out.hidden_states[i] for i in layer], dim=-1)
    if config.vision_feature_select_strategy == "default":
        feats = feats[:, 1:]  # drop CLS
    return feats


def encode_video(model, processor, family: Family, frames, strides: list[int], vision_batch: int, pixels=None) -> torch.Tensor:
    """Visual tokens of one video as (1, tokens, D_text), the layout `mm_encoder_outputs`
    expects; OneVision's closing image_newline token included. `pixels`: the processor's
    output for all frames, when a decode worker already computed it (decode_workers.py)."""
    inner = model.model
    grid = grid_side(model.config)
    device = inner.vision_tower.device
    dtype = inner.vision_tower.dtype
    pooled = []
    n_frames = len(frames) if pixels is None else len(pixels)
    for start in range(0, n_frames, vision_batch):
        if pixels is None:
            # the frames are already sampled: a checkpoint whose video processor config says
            # do_sample_frames=true would otherwise resample every chunk to its own num_frames
            chunk = processor.video_processor(videos=[frames[start : start + vision_batch]], return_tensors="pt",
                                              do_sample_frames=False)["pixel_values_videos"][0]
        else:
            chunk = pixels[start : start + vision_batch]
        feats = _vision_features(model, chunk.to(device=device, dtype=dtype))
        chunk_strides = strides[start : start + len(chunk)]
        if family.pools_before_projector:
            tokens = inner.multi_modal_projector(pool_video(feats, chunk_strides, family.model_type, grid))
        else:
            tokens = pool_video(inner.multi_modal_projector(feats), chunk_strides, family.model_type, grid)
        pooled.append(tokens)
        del feats, chunk
    video = torch.cat(pooled, dim=0)
    if family.closes_with_newline:
        video = torch.cat([video, inner.image_newline[None, :].to(video.device, video.dtype)], dim=0)
    return video[None]


def expand_video_token(input_ids: list[int], video_token_id: int, count: int) -> list[int]:
    """Replace the single video placeholder of a tokenized prompt by `count` copies, the
    number of visual tokens the language model will receive."""
    positions = [i for i, t in enumerate(input_ids) if t == video_token_id]
    if len(positions) != 1:
        raise ValueError(f"expected exactly one video placeholder in the prompt, found {len(positions)}")
    at = positions[0]
    return input_ids[:at] + [video_token_id] * count + input_ids[at + 1 :]
