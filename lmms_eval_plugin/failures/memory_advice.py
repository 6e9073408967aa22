"""Out of memory: stop the run with a message that names the document, the frame count and
visual tokens, and the settings that would need less memory."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from loguru import logger as eval_logger

from lmms_eval_plugin.failures.errors import OutOfMemoryRunError, is_out_of_memory
from lmms_eval_plugin.method.pooling import PoolingSettings, visual_token_count


def describe_pooling(p: PoolingSettings) -> str:
    if p.mode == "progressive":
        return f"progressive(K={p.group}, s_h={p.high_stride}, s_l={p.low_stride})"
    if p.mode == "uniform":
        return f"uniform(stride={p.uniform_stride})"
    return "native"


@dataclass(frozen=True)
class MemoryAdvisor:
    """What the advice depends on: the family's token counts, the pooling, the chunking, the dtype."""

    model_type: str
    grid: int
    native_stride: int
    pooling: PoolingSettings
    vision_batch: int
    float32: bool

    def _tokens_for(self, frames: int, pooling: PoolingSettings) -> int:
        return visual_token_count(self.model_type, frames, pooling, self.grid, self.native_stride)

    def message(self, frames: int, tokens: int, stage: str = "") -> str:
        fits = []
        if self.pooling.mode != "progressive":
            fits.append(f"pooling=progressive ({self._tokens_for(frames, PoolingSettings('progressive'))} visual tokens at {frames} frames)")
        if frames > 1:
            fits.append(f"num_frames={frames // 2} or a smaller *_lvu_f* task ({self._tokens_for(frames // 2, self.pooling)} visual tokens)")
        if "vision" in stage and self.vision_batch > 1:
            fits.append(f"vision_batch={self.vision_batch // 2} (frames per vision-tower chunk)")
        if self.float32:
            fits.append("dtype=bfloat16")
        where = f" {stage}" if stage else ""
        return (
            f"out of memory{where} with {frames} frames = {tokens} visual tokens "
            f"(pooling={describe_pooling(self.pooling)}, vision_batch={self.vision_batch}). "
            f"Settings that need less memory: {'; '.join(fits) or 'a larger device'}."
        )

    @contextmanager
    def guard(self, task, doc_id, stage: str, frames: int, tokens: int):
        """Turn an out-of-memory error inside the block into a run-ending, advising message."""
        try:
            yield
        except (RuntimeError, MemoryError) as exc:  # torch.OutOfMemoryError is a RuntimeError
            if not is_out_of_memory(exc):
                raise
            message = f"lvu_ext: {task} doc {doc_id}: " + self.message(frames, tokens, stage)
            eval_logger.error(message)
            raise OutOfMemoryRunError(message) from None
