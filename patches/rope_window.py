"""Temporarily swap the language model's RoPE frequencies (one request at a time).

Instances only: the rotary modules' ``inv_freq`` buffer and ``attention_scaling`` are
replaced for the duration of the block and the original objects put back on exit,
even on exception. Classes are never patched, so nothing leaks into other models.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


def _language_model(model):
    # LlavaOnevisionForConditionalGeneration -> .model.language_model; *Model -> .language_model;
    # a bare causal LM is its own language model.
    for path in (("language_model",), ("model", "language_model")):
        obj = model
        for name in path:
            obj = getattr(obj, name, None)
        if isinstance(obj, torch.nn.Module):
            return obj
    return model


def rotary_modules(model) -> list[torch.nn.Module]:
    """Rotary-embedding modules (inv_freq buffer + attention_scaling) of the language model."""
    return [
        m
        for m in _language_model(model).modules()
        if isinstance(m._buffers.get("inv_freq"), torch.Tensor) and hasattr(m, "attention_scaling")
    ]


@contextmanager
def rope_override(model, override):
    """Use override.inv_freq / override.attention_scaling inside the block; no-op if inv_freq is None."""
    if override is None or override.inv_freq is None:
        yield
        return
    modules = rotary_modules(model)
    if not modules:
        raise RuntimeError("rope_override: no rotary embedding (inv_freq + attention_scaling) in the language model")
    for m in modules:
        if m.inv_freq.shape != override.inv_freq.shape:
            raise ValueError(
                f"rope_override: inv_freq shape {tuple(override.inv_freq.shape)} does not match "
                f"the model's {tuple(m.inv_freq.shape)}"
            )
    saved = [(m, m.inv_freq, m.attention_scaling) for m in modules]
    try:
        for m in modules:
            # Assigning a tensor to a registered buffer name replaces the buffer, not its contents,
            # so the original tensor object stays intact for restoration.
            m.inv_freq = override.inv_freq.to(device=m.inv_freq.device, dtype=m.inv_freq.dtype)
            m.attention_scaling = override.attention_scaling
        yield
    finally:
        for m, inv_freq, scaling in saved:
            m.inv_freq = inv_freq
            m.attention_scaling = scaling
