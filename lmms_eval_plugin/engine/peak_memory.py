"""Peak GPU memory per request, for the records (`peak_mem_gb`): what the paper's Table 5
calls Memory, measured as `torch.cuda.max_memory_allocated` since the request began.

On a device without CUDA memory statistics the field is left out: not measured, never 0."""

from __future__ import annotations

import torch

GB = 1e9  # the paper's Memory column is in GB; decimal, as nvidia-smi and the paper print them


def _is_cuda(device) -> bool:
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


def reset(device) -> None:
    """Start a request's measurement (the vision tower, the prefill and decoding all count)."""
    if _is_cuda(device):
        torch.cuda.reset_peak_memory_stats(device)


def record_field(device) -> dict:
    """{'peak_mem_gb': ...} on CUDA since the last reset; {} elsewhere."""
    if not _is_cuda(device):
        return {}
    return {"peak_mem_gb": round(torch.cuda.max_memory_allocated(device) / GB, 3)}
