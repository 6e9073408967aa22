"""Progressive pooling of per-frame visual tokens (METHOD.md section 2).

Each family pools the way the model itself does, so native strides reproduce it exactly:

* LLaVA-OneVision: bilinear resize of the g x g grid to ceil(g/stride), laid out as
  ``LlavaOnevisionModel.apply_pooling``; applied AFTER the projector. The caller appends
  the one ``image_newline`` that closes the video (counted by ``visual_token_count``).
* LLaVA-NeXT-Video: ``avg_pool2d(kernel=stride, stride=stride)``, laid out as
  ``LlavaNextVideoPooler``; applied BEFORE the projector.

The functions here only pool a (F, g*g, D) tensor; where that sits is the model's business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

ONEVISION = "llava_onevision"
NEXT_VIDEO = "llava_next_video"
FAMILIES = (ONEVISION, NEXT_VIDEO)
MODES = ("native", "progressive", "uniform")

# Full per-frame grid: OneVision SigLIP 384/14 = 27; NeXT-Video CLIP 336/14 = 24.
GRID_SIDE = {ONEVISION: 27, NEXT_VIDEO: 24}
# Native strides (NeXT-Video's real value comes from config.spatial_pool_stride).
NATIVE_STRIDE = {ONEVISION: 2, NEXT_VIDEO: 2}


def _pos_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {', '.join(FAMILIES)}")


@dataclass(frozen=True)
class PoolingSettings:
    mode: str = "native"  # pooling
    group: int = 4  # pp_group (K)
    high_stride: int = 2  # pp_high_stride (s_h, first frame of each group)
    low_stride: int = 8  # pp_low_stride (s_l, other frames)
    uniform_stride: int | None = None  # pool_stride (mode=uniform)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"pooling={self.mode!r} is not one of {', '.join(MODES)}")
        if not _pos_int(self.group):
            raise ValueError(f"pp_group={self.group!r} must be an integer >= 1")
        if not _pos_int(self.high_stride):
            raise ValueError(f"pp_high_stride={self.high_stride!r} must be an integer >= 1")
        if not _pos_int(self.low_stride):
            raise ValueError(f"pp_low_stride={self.low_stride!r} must be an integer >= 1")
        if self.high_stride > self.low_stride:
            raise ValueError(
                f"pp_high_stride={self.high_stride} must be <= pp_low_stride={self.low_stride} "
                "(the first frame of each group keeps more tokens)"
            )
        if self.mode == "uniform" and self.uniform_stride is None:
            raise ValueError("pooling=uniform needs pool_stride (an integer >= 1)")
        if self.uniform_stride is not None and not _pos_int(self.uniform_stride):
            raise ValueError(f"pool_stride={self.uniform_stride!r} must be an integer >= 1")

    def validate_for_grid(self, family: str, grid_side: int) -> None:
        """Reject strides that would leave a frame with no token on this grid."""
        _check_family(family)
        used = {"native": [], "progressive": [("pp_high_stride", self.high_stride), ("pp_low_stride", self.low_stride)],
                "uniform": [("pool_stride", self.uniform_stride)]}[self.mode]
        for arg, stride in used:
            if tokens_per_frame(family, grid_side, stride) == 0:
                raise ValueError(
                    f"{arg}={stride} leaves no tokens on the {grid_side}x{grid_side} grid of {family} "
                    f"(average pooling needs a stride <= {grid_side})"
                )


def tokens_per_frame(family: str, grid_side: int, stride: int) -> int:
    _check_family(family)
    if not _pos_int(stride):
        raise ValueError(f"stride={stride!r} must be an integer >= 1")
    side = math.ceil(grid_side / stride) if family == ONEVISION else grid_side // stride
    return side * side


def frame_strides(n_frames: int, settings: PoolingSettings, native_stride: int) -> list[int]:
    """Stride of every frame, in frame order."""
    if settings.mode == "native":
        return [native_stride] * n_frames
    if settings.mode == "uniform":
        return [settings.uniform_stride] * n_frames
    # Consecutive groups of K: first frame s_h, the rest s_l; a last shorter group is fine.
    return [settings.high_stride if i % settings.group == 0 else settings.low_stride for i in range(n_frames)]


def visual_token_count(
    family: str, n_frames: int, settings: PoolingSettings, grid_side: int, native_stride: int
) -> int:
    """Visual tokens the language model will see for one video (OneVision: + image_newline)."""
    if n_frames < 1:
        raise ValueError(f"n_frames={n_frames} must be >= 1")
    n = sum(tokens_per_frame(family, grid_side, s) for s in frame_strides(n_frames, settings, native_stride))
    return n + (1 if family == ONEVISION else 0)


def pool_frames(features: torch.Tensor, stride: int, family: str, grid_side: int) -> torch.Tensor:
    """(F, g*g, D) -> (F, t, D), pooled exactly like the family's own code."""
    _check_family(family)
    n, seq, dim = features.shape
    if seq != grid_side * grid_side:
        raise ValueError(f"expected {grid_side}x{grid_side}={grid_side * grid_side} tokens per frame, got {seq}")
    grid = features.view(n, grid_side, grid_side, dim).permute(0, 3, 1, 2)
    if family == ONEVISION:
        side = math.ceil(grid_side / stride)
        # .contiguous() as in apply_pooling: same memory layout -> same kernel -> same bits.
        out = F.interpolate(grid.contiguous(), size=[side, side], mode="bilinear")
        return out.permute(0, 2, 3, 1).reshape(n, -1, dim)
    # No .contiguous() here, as in LlavaNextVideoPooler (channels-last input to the pool).
    out = F.avg_pool2d(grid, kernel_size=stride, stride=stride)
    return out.flatten(2).transpose(1, 2).contiguous()


def pool_video(features: torch.Tensor, strides: list[int], family: str, grid_side: int) -> torch.Tensor:
    """(F, g*g, D) with one stride per frame -> (sum of tokens, D) in frame order.

    Frames sharing a stride are pooled in one batched call; only that group is copied,
    and each result is written straight into its rows of the output.
    """
    n_frames, _, dim = features.shape
    if len(strides) != n_frames:
        raise ValueError(f"got {len(strides)} strides for {n_frames} frames")
    if len(set(strides)) == 1:  # one stride: a single batched call, no scatter
        return pool_frames(features, strides[0], family, grid_side).reshape(-1, dim)
    counts = torch.tensor(
        [tokens_per_frame(family, grid_side, s) for s in strides], dtype=torch.long, device=features.device
    )
    offsets = torch.cumsum(counts, 0) - counts
    out = features.new_empty(int(counts.sum()), dim)
    for stride in sorted(set(strides)):
        idx = torch.tensor([i for i, s in enumerate(strides) if s == stride], device=features.device)
        pooled = pool_frames(features.index_select(0, idx), stride, family, grid_side)
        rows = offsets[idx][:, None] + torch.arange(pooled.shape[1], device=features.device)
        out[rows.reshape(-1)] = pooled.reshape(-1, dim)
    return out
