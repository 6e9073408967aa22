"""The method's settings (RopeSettings, PoolingSettings) from the parsed model args; a bad
combination is a ModelArgError, so it stops the run before any weight is loaded."""

from __future__ import annotations

from lmms_eval_plugin.method.pooling import PoolingSettings
from lmms_eval_plugin.method.rope_scaling import RopeSettings
from lmms_eval_plugin.model_args import ModelArgError


def rope_settings_from(args, default_window: int | None) -> RopeSettings:
    """`default_window`: the family's visual window, once the config says which family;
    None before the checkpoint is read (the values are still validated then)."""
    window = args.visual_window or default_window or 1
    try:
        return RopeSettings(
            variant=args.rope_ext, visual_window=window, factor=args.rope_factor,
            alpha=args.rope_alpha, beta=args.rope_beta, attn_scale=args.rope_attn_scale, base=args.rope_base,
        )
    except ValueError as exc:
        raise ModelArgError(f"lvu_ext: {exc}") from None


def pooling_settings_from(args) -> PoolingSettings:
    try:
        return PoolingSettings(
            mode=args.pooling, group=args.pp_group, high_stride=args.pp_high_stride,
            low_stride=args.pp_low_stride, uniform_stride=args.pool_stride,
        )
    except ValueError as exc:
        raise ModelArgError(f"lvu_ext: {exc}") from None
