"""What a run was, read only from what lmms-eval recorded (results JSON `config` and the
task's `configs[task].metadata`), never from folder names, which users rename freely."""

from __future__ import annotations

from dataclasses import dataclass

# model_args naming the checkpoint / API model, shown in the Model column.
IDENTITY_KEYS = ("pretrained", "model_version", "model", "model_name", "model_id", "model_path")
# model_args that set frames, shown in the Frames column instead of Settings.
FRAME_KEYS = ("num_frames", "max_frames_num", "max_num_frames", "fps", "max_frames")
# model_args that only move work around (placement, batching, logging), not the answers.
RUNTIME_KEYS = ("device", "device_map", "batch_size", "record_path", "vision_batch", "metrics_output_path")


@dataclass(frozen=True)
class Frames:
    """Frame sampling of a run; `count` is the x position in plots (the cap for fps)."""

    count: int | None
    fps: float | None = None
    text: str | None = None  # free-form label of published results, e.g. "0.5 fps"

    @property
    def label(self) -> str:
        if self.text:
            return self.text
        if self.fps is not None:
            return f"{_num(self.fps)}fps<={self.count}" if self.count else f"{_num(self.fps)}fps"
        return "?" if self.count is None else str(self.count)

    def sort_key(self):
        return (self.count is None, self.count or 0, self.fps is not None, self.fps or 0.0, self.text or "")


def _num(x: float) -> str:
    return f"{x:g}"


def parse_model_args(model_args) -> dict[str, str]:
    """lmms-eval records model_args as the CLI string `k=v,k=v` (a dict in some setups)."""
    if isinstance(model_args, dict):
        return {str(k): str(v) for k, v in model_args.items()}
    out = {}
    for part in str(model_args or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip()
    return out


def model_label(model: str, args: dict[str, str]) -> str:
    for key in IDENTITY_KEYS:
        if args.get(key):
            return f"{model} ({args[key]})"
    return model or "?"


def settings_label(args: dict[str, str]) -> str:
    skip = set(IDENTITY_KEYS) | set(FRAME_KEYS) | set(RUNTIME_KEYS)
    kept = [f"{k}={v}" for k, v in args.items() if k not in skip]
    return ",".join(kept) if kept else "default"


def _int(value):
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def frames_of(task_metadata: dict | None, args: dict[str, str]) -> Frames:
    """Task metadata first (our `*_lvu_*` tasks set it), then the model's own args."""
    meta = task_metadata if isinstance(task_metadata, dict) else {}
    if meta.get("lvu_fps") is not None:
        return Frames(_int(meta.get("lvu_max_frames")), _float(meta["lvu_fps"]))
    if meta.get("lvu_num_frames") is not None:
        return Frames(_int(meta["lvu_num_frames"]))
    if _float(args.get("fps")):
        return Frames(_int(args.get("max_frames") or args.get("max_frames_num")), _float(args["fps"]))
    for key in ("num_frames", "max_frames_num", "max_num_frames"):
        if _int(args.get(key)):
            return Frames(_int(args[key]))
    return Frames(None)
