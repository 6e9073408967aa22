"""The language model's KV cache of a prompt prefix, computed in chunks (`prefill_chunk=T`).

One forward pass over a 15k-token prompt holds every layer's activations for all 15k
positions at once; in chunks of T tokens the peak is weights + KV cache + one chunk's
activations. Chunk k's video placeholders take the next rows of the pooled visual
features (placeholder order), the way transformers' own `prefill_chunk_size` slices
`mm_encoder_outputs`, and positions continue from the cache length. In exact arithmetic
the cache equals the one-pass cache; in floating point the attention sums are grouped
differently, so values may differ in the last bits (see the README's bf16 caveat).
"""

from __future__ import annotations

import torch


def prefill_cache(model, input_ids: torch.Tensor, features: torch.Tensor | None, chunk: int):
    """KV cache (a DynamicCache) of `input_ids` (1, L), whose video placeholders take the
    rows of `features` (1, tokens, D) in order; `chunk` tokens per forward pass (0: one pass)."""
    from transformers import DynamicCache
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    length = input_ids.shape[1]
    step = chunk if chunk and chunk > 0 else length
    is_video = input_ids[0] == model.config.video_token_id
    feature_row = is_video.cumsum(0) - 1  # placeholder i takes feature row i
    cache = DynamicCache(config=model.config)
    for start in range(0, length, step):
        end = min(start + step, length)
        mask = is_video[start:end]
        kwargs = {}
        if bool(mask.any()):
            rows = feature_row[start:end][mask]
            kwargs["mm_encoder_outputs"] = {"video": BaseModelOutputWithPooling(pooler_output=features[:, rows])}
        # The base model (no lm_head): a prefix's logits are never used.
        out = model.model(
            input_ids=input_ids[:, start:end],
            attention_mask=torch.ones((1, end), dtype=input_ids.dtype, device=input_ids.device),
            cache=cache,
            use_cache=True,
            **kwargs,
        )
        cache = out.cache
        del out
    return cache
