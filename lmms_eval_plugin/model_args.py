"""Model args of `lvu_ext`: one table of names, types, defaults and allowed values.

Everything is checked here, before a single weight is loaded, so a typo costs a clear
message instead of minutes of loading a 7B checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

AUTO = "auto"


class ModelArgError(ValueError):
    """An impossible or unknown model arg (the message names the arg and what is allowed)."""


def _bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true/false")


def _opt(cast):
    def convert(value):
        if value is None or str(value).strip().lower() in ("", "none", "null"):
            return None
        return cast(value)

    return convert


def _int(value):
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("expected an integer")
    return int(str(value).strip()) if not isinstance(value, (int, float)) else int(value)


def _float_or_auto(value):
    if str(value).strip().lower() == AUTO:
        return AUTO
    return float(value)


def _int_or_auto(value):
    if str(value).strip().lower() == AUTO:
        return AUTO
    return _int(value)


def _nonempty(value):
    text = str(value).strip()
    if not text:
        raise ValueError("expected auto, off or a directory")
    return text


def _choice(*allowed):
    def convert(value):
        text = str(value).strip()
        if text not in allowed:
            raise ValueError(f"allowed: {', '.join(allowed)}")
        return text

    convert.allowed = allowed
    return convert


@dataclass(frozen=True)
class LvuArgs:
    pretrained: str = "llava-hf/llava-onevision-qwen2-7b-ov-hf"
    revision: str = "main"
    dtype: str = AUTO
    device: str | None = None
    device_map: str = ""
    attn_implementation: str = "sdpa"
    trust_remote_code: bool = False
    batch_size: int = 1
    system_prompt: str | None = None  # none: the checkpoint's own chat template, as transformers renders it
    # frames
    num_frames: int = 32
    fps: float | None = None
    max_frames: int | None = None
    # which reader decodes (docs/decoding.md): auto = the exact PyAV readers (frame k = FFmpeg's sequential decode's k-th
    # frame); sequential = always decode in order; decord = lmms-eval's legacy reader (optional extra, not exact on every file)
    decoder: str = AUTO
    # decoded frames kept on disk per (video file, frame plan), shared by runs, processes and nodes (docs/frame-cache.md);
    # none = off. frame_cache_gb caps the folder (least recently used entries go first); none = no cap.
    # frame_cache_stage: what an entry keeps: decoded = the reader's frames (any checkpoint can use them); processed = the
    # checkpoint's processor's resized frames (smaller, a hit skips the resize; only the same processor settings use them)
    frame_cache: str | None = None
    frame_cache_gb: float | None = None
    frame_cache_stage: str = "decoded"
    # method: RoPE (METHOD.md section 1)
    rope_ext: str = "vcwe"
    visual_window: int | None = None
    rope_factor: object = AUTO
    rope_alpha: float = 1.0
    rope_beta: float = 32.0
    rope_attn_scale: str = "yarn"
    rope_base: str = "checkpoint"  # METHOD.md 1b: extend the checkpoint's own (e.g. linear-scaled) frequencies
    # method: pooling (METHOD.md section 2)
    pooling: str = "progressive"
    pp_group: int = 4
    pp_high_stride: int = 2
    pp_low_stride: int = 8
    pool_stride: int | None = None
    # memory / robustness / logging
    vision_batch: int = 16
    # benchmark throughput (README "Performance"): reuse across the questions of a video
    video_cache: int = 1
    prefix_cache: bool = True
    prefetch: object = AUTO  # videos ahead; auto: decode_workers (1 with decode_workers=0)
    decode_workers: object = AUTO  # worker processes decoding ahead; auto: the CPUs shared by this machine's processes, at most 8 (README "Decode workers")
    # seconds the model waits for one video's decode before its process is killed, the video retried once with the
    # sequential reader, then failed ("decode did not finish in N s"); auto: scaled by the video's duration and frames (engine/deadline.py)
    decode_timeout_s: object = AUTO
    prefill_chunk: int = 0
    # data parallel (README "Data parallel"): auto = video under several processes, unless --use_cache
    shard: str = AUTO
    on_video_error: str = "continue"
    record_path: str | None = None
    resume_journal: str = AUTO  # auto: follow --use_cache; off; or a directory


_CONVERTERS = {
    "pretrained": str,
    "revision": str,
    "dtype": _choice(AUTO, "bfloat16", "float16", "float32"),
    "device": _opt(str),
    "device_map": lambda v: "" if v is None else str(v),
    "attn_implementation": _choice("sdpa", "eager", "flash_attention_2"),
    "trust_remote_code": _bool,
    "batch_size": _int,
    "system_prompt": _opt(str),
    "decoder": _choice(AUTO, "sequential", "decord"),
    "frame_cache": _opt(str),
    "frame_cache_gb": _opt(float),
    "frame_cache_stage": _choice("decoded", "processed"),
    "num_frames": _int,
    "fps": _opt(float),
    "max_frames": _opt(_int),
    "rope_ext": _choice("none", "vcwe", "yarn", "yarn_language"),
    "visual_window": _opt(_int),
    "rope_factor": _float_or_auto,
    "rope_alpha": float,
    "rope_beta": float,
    "rope_attn_scale": _choice("yarn", "none"),
    "rope_base": _choice("checkpoint", "unscaled"),
    "pooling": _choice("native", "progressive", "uniform"),
    "pp_group": _int,
    "pp_high_stride": _int,
    "pp_low_stride": _int,
    "pool_stride": _opt(_int),
    "vision_batch": _int,
    "video_cache": _int,
    "prefix_cache": _bool,
    "prefetch": _int_or_auto,
    "decode_workers": _int_or_auto,
    "decode_timeout_s": _float_or_auto,
    "prefill_chunk": _int,
    "shard": _choice(AUTO, "video", "harness"),
    "on_video_error": _choice("continue", "raise"),
    "record_path": _opt(str),
    "resume_journal": _nonempty,
}

# Passed by lmms-eval itself to every model; accepted and ignored where meaningless.
_HARNESS_KWARGS = ("max_batch_size",)


def valid_keys() -> list[str]:
    return [f.name for f in fields(LvuArgs)]


def parse_model_args(**kwargs) -> LvuArgs:
    unknown = sorted(k for k in kwargs if k not in _CONVERTERS and k not in _HARNESS_KWARGS)
    if unknown:
        raise ModelArgError(
            f"lvu_ext: unknown model arg(s) {', '.join(unknown)}. Valid keys: {', '.join(valid_keys())}"
        )
    values = {}
    for key, raw in kwargs.items():
        if key in _HARNESS_KWARGS or raw is None and key not in ("device", "fps", "max_frames", "visual_window", "pool_stride", "record_path"):
            continue
        try:
            values[key] = _CONVERTERS[key](raw)
        except (TypeError, ValueError) as exc:
            raise ModelArgError(f"lvu_ext: model arg {key}={raw!r} is invalid ({exc})") from None
    args = LvuArgs(**values)
    _check_ranges(args)
    return args


def check_pretrained_exists(name: str) -> None:
    """Refuse a `pretrained` written as a local path (absolute, ./, ../, ~, or more slashes
    than a hub id's org/name) where nothing is: huggingface_hub would only say it is no repo
    id. Checked after every other arg, so their problems are reported first."""
    import os

    looks_local = name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name
    if looks_local and not os.path.exists(os.path.expanduser(name)):
        raise ModelArgError(f"lvu_ext: model arg pretrained={name!r}: the local folder {os.path.abspath(os.path.expanduser(name))} "
                            f"does not exist (a hub id is org/name; the embedded defaults are tiny-random-onevision, "
                            f"tiny-random-nextvideo)")


def repeated_keys(arg_string: str) -> list[str]:
    """Keys given more than once in an lmms-eval `--model_args` string (it keeps the last)."""
    keys = [item.split("=", 1)[0].strip() for item in (arg_string or "").split(",") if "=" in item]
    return sorted({k for k in keys if keys.count(k) > 1})


def _check_ranges(args: LvuArgs) -> None:
    def need(ok: bool, key: str, allowed: str):
        if not ok:
            raise ModelArgError(f"lvu_ext: model arg {key}={getattr(args, key)!r} is impossible; allowed: {allowed}")

    need(args.num_frames >= 1, "num_frames", "an integer >= 1")
    need(args.fps is None or args.fps > 0, "fps", "a number > 0 (or none for uniform num_frames)")
    need(args.max_frames is None or args.max_frames >= 1, "max_frames", "an integer >= 1 (or none)")
    need(args.max_frames is None or args.fps is not None, "max_frames",
         "none unless fps is set (it caps fps sampling; num_frames alone already fixes the count)")
    need(args.visual_window is None or args.visual_window >= 1, "visual_window",
         "an integer >= 1 (visual tokens the checkpoint was trained on), or none for the family's default")
    need(args.batch_size == 1, "batch_size", "1 (one video per forward pass)")
    need(args.vision_batch >= 1, "vision_batch", "an integer >= 1 (frames per vision-tower chunk)")
    need(args.video_cache >= 0, "video_cache", "an integer >= 0 (videos whose features are kept; 0 = off)")
    need(args.prefetch == AUTO or 0 <= args.prefetch <= 16, "prefetch",
         "auto or an integer from 0 to 16 (videos decoded ahead; 0 = none; the memory bound is documented up to 16)")
    need(args.decode_workers == AUTO or args.decode_workers >= 0, "decode_workers",
         "auto or an integer >= 0 (worker processes that decode and preprocess videos; 0 = in the main process)")
    need(args.decode_timeout_s == AUTO or args.decode_timeout_s > 0, "decode_timeout_s",
         "auto or a number of seconds > 0 (how long one video's decode may take before it is killed)")
    if args.decoder == "decord":
        import importlib.util

        need(importlib.util.find_spec("decord") is not None, "decoder",
             "auto or sequential (decord is not installed: pip install 'lvu_ext[decord]', x86_64 wheels only)")
    need(args.frame_cache_gb is None or args.frame_cache_gb > 0, "frame_cache_gb", "a number of GB > 0, or none (no cap)")
    need(args.frame_cache_gb is None or args.frame_cache is not None, "frame_cache_gb", "none unless frame_cache is set (it caps that folder)")
    need(args.frame_cache_stage == "decoded" or args.frame_cache is not None, "frame_cache_stage",
         "decoded unless frame_cache is set (it says what that folder keeps)")
    need(args.prefill_chunk >= 0, "prefill_chunk", "an integer >= 0 (tokens per prefill chunk; 0 = one pass)")
    if args.device and args.device.startswith("cuda"):
        import torch

        need(torch.cuda.is_available(), "device", "cpu (torch sees no CUDA device on this machine)")
    if args.attn_implementation == "flash_attention_2":
        import importlib.util

        need(importlib.util.find_spec("flash_attn") is not None, "attn_implementation", "sdpa or eager (flash_attn is not installed)")
