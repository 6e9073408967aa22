"""Errors that must end an lmms-eval run with a non-zero exit status.

lmms-eval's CLI catches every `Exception` raised while building the model or evaluating,
prints it and exits 0, so a run that could not finish looks like a success to a shell
script or a scheduler. `SystemExit` is not an `Exception`: it passes through the harness,
Python prints its message on stderr and the process exits with status 1 (under
`accelerate launch` the launcher then stops the other ranks instead of leaving them at a
barrier).
"""

from __future__ import annotations


class FatalRunError(SystemExit):
    """Stop the whole run; `str(err)` is the message."""

    def __init__(self, message: str):
        super().__init__(message)  # a str code: printed on stderr, exit status 1


class DocumentVideoError(FatalRunError):
    """A document's video could not be used and `on_video_error=raise` was asked for."""


class OutOfMemoryRunError(FatalRunError):
    """The accelerator (or host) ran out of memory; the message suggests settings that fit."""


class ModelArgExit(FatalRunError):
    """An impossible model arg reached through the harness (`--model_args`)."""


class RequestArgError(FatalRunError):
    """An impossible generation kwarg or task metadata value, found before any request runs."""


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA raises torch.OutOfMemoryError; torch's CPU allocator raises a plain RuntimeError."""
    import torch

    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


class RequestFailedError(FatalRunError):
    """Any other exception while answering one request (a generation kwarg `generate`
    rejects, a prompt that cannot be tokenized, a device error)."""
