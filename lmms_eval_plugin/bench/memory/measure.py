"""Probes: peak memory (CUDA allocator or process RSS) and time to first token."""

from __future__ import annotations

import hashlib
import resource
import time

import torch

from lmms_eval_plugin.bench.machine import GB


def _proc_status_bytes(field: str) -> int | None:
    """A memory field of /proc/self/status (reported in KiB); None where there is none."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def current_rss_bytes() -> int | None:
    return _proc_status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    """Peak RSS of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so an in-process case can be measured;
    False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def hwm_rss_bytes() -> int | None:
    return _proc_status_bytes("VmHWM")


class MemoryProbe:
    """Peak memory of one case. CUDA: allocator peak since `start`. CPU in a fresh
    process: ru_maxrss at the end (`fresh_process=True`); CPU in-process: VmHWM after a reset."""

    def __init__(self, device: str, fresh_process: bool):
        self.cuda = device.startswith("cuda")
        self.fresh_process = fresh_process
        self.valid = True
        self.armed = False
        self.before_lm = None  # peak when the LM prefill starts: decoding + vision phase
        self._handle = None

    def watch_lm(self, model) -> None:
        """Note the peak reached before the language model's first call, to tell the
        vision phase from the LM prefill."""
        self._handle = model.model.language_model.register_forward_pre_hook(self._lm_hook)

    def _lm_hook(self, module, args):
        if self.armed and self.before_lm is None:
            self.before_lm = self.peak()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def baseline(self) -> float:
        """Memory held now (after the model is loaded), in GB."""
        if self.cuda:
            return torch.cuda.memory_allocated() / GB
        return (current_rss_bytes() or 0) / GB

    def start(self) -> None:
        self.armed, self.before_lm = True, None
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        elif not self.fresh_process:
            self.valid = reset_peak_rss()

    def peak(self) -> float | None:
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / GB
        if self.fresh_process:
            return peak_rss_bytes() / GB
        hwm = hwm_rss_bytes()
        return hwm / GB if (self.valid and hwm) else None


class FirstTokenTimer:
    """Two clocks that stop at the end of the first `lm_head` call (the prefill that
    yields the first new token):

    * ttft: from `start()` (request handed over: frames still to decode) - what a user waits;
    * prefill: from the first vision-tower call - the model's own work (vision tower,
      projector, pooling, LM prefill), comparable across paths whatever the decoder does.

    Also records how many positions the first call computed logits for (1 when generate
    passes logits_to_keep=1) and a hash of the last position's logits (bitwise
    comparison of two paths' prefills).
    """

    def __init__(self, model):
        self.cuda = next(model.parameters()).is_cuda
        self.t0 = self.vision_t = self.first = self.logit_rows = self.logits_sha = None
        self._handles = [
            model.model.vision_tower.register_forward_pre_hook(self._vision_hook),
            model.get_output_embeddings().register_forward_hook(self._head_hook),
        ]

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def start(self) -> None:
        self.vision_t = self.first = self.logit_rows = self.logits_sha = None
        self.t0 = self._now()

    def _vision_hook(self, module, args):
        if self.vision_t is None and self.t0 is not None:
            self.vision_t = self._now()

    def _head_hook(self, module, inputs, output):
        if self.first is None and self.t0 is not None:
            self.first = self._now()
            self.logit_rows = int(output.shape[-2])
            last = output[0, -1].detach().float().cpu().contiguous().numpy()
            self.logits_sha = hashlib.sha256(last.tobytes()).hexdigest()[:16]

    @property
    def ttft(self) -> float | None:
        return None if self.first is None else self.first - self.t0

    @property
    def prefill(self) -> float | None:
        return None if self.first is None or self.vision_t is None else self.first - self.vision_t

    def elapsed(self) -> float:
        return self._now() - self.t0

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def is_oom(exc: BaseException) -> bool:
    """Out of memory, whoever reported it (torch, Python, or lvu_ext's re-raised message)."""
    from lmms_eval_plugin.failures.errors import OutOfMemoryRunError, is_out_of_memory

    if isinstance(exc, OutOfMemoryRunError) or is_out_of_memory(exc):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
