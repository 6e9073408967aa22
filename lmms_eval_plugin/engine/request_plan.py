"""What one request asks for: its video, its frame plan and its generation kwargs.

The frame count reaches the model through the task's `metadata` (copied by lmms-eval
into every Instance; other harness models ignore it): `lvu_num_frames`, or `lvu_fps`
with `lvu_max_frames`. Generation kwargs may also carry `num_frames` / `fps` /
`max_frames` (e.g. `--gen_kwargs num_frames=64`); those win. The model's own
`num_frames`/`fps`/`max_frames` args are the fallback.
"""

from __future__ import annotations

import copy

from lmms_eval_plugin.engine.video import FramePlan, VideoError

# Keys `model.generate` understands; anything else in a task's generation_kwargs is
# consumed here and never passed on.
GENERATE_KEYS = ("max_new_tokens", "min_new_tokens", "temperature", "top_p", "top_k", "num_beams", "do_sample",
                 "repetition_penalty", "length_penalty", "no_repeat_ngram_size")
FRAME_KEYS = ("num_frames", "fps", "max_frames")
DEFAULT_MAX_NEW_TOKENS = 1024


def split_generation_kwargs(gen_kwargs: dict, eos_token_id) -> tuple[dict, list[str], dict]:
    """(kwargs for `generate`, `until` stop strings, frame overrides)."""
    until = gen_kwargs.pop("until", None) or []
    if isinstance(until, str):
        until = [until]
    overrides = {k: gen_kwargs.pop(k) for k in FRAME_KEYS if k in gen_kwargs}
    kwargs = {k: gen_kwargs[k] for k in GENERATE_KEYS if k in gen_kwargs and gen_kwargs[k] is not None}
    kwargs.setdefault("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
    # The harness convention (llava_hf, llava_onevision): temperature > 0 means sampling.
    if "temperature" in kwargs:
        do_sample = float(kwargs["temperature"]) > 0
    else:
        do_sample = bool(kwargs.get("do_sample", False))
    kwargs["do_sample"] = do_sample
    if not do_sample:
        # Greedy: sampling knobs would only trigger warnings in generate.
        for key in ("temperature", "top_p", "top_k"):
            kwargs.pop(key, None)
    kwargs["eos_token_id"] = eos_token_id
    return kwargs, list(until), overrides


def _first(*values):
    for v in values:
        if v is not None:
            return v
    return None


def frame_plan_for(request, overrides: dict, args) -> FramePlan:
    meta = getattr(request, "metadata", None) or {}
    num = _first(overrides.get("num_frames"), meta.get("lvu_num_frames"))
    fps = _first(overrides.get("fps"), meta.get("lvu_fps"))
    cap = _first(overrides.get("max_frames"), meta.get("lvu_max_frames"))
    if num is None and fps is None:  # the task says nothing: the model args decide
        num, fps, cap = args.num_frames, args.fps, _first(cap, args.max_frames)
    if fps is not None and num is None:
        return FramePlan(num_frames=None, fps=float(fps), max_frames=int(cap) if cap is not None else None)
    return FramePlan(num_frames=int(num), fps=None, max_frames=None)


def video_path(visuals_of) -> str:
    """The one video path that `visuals_of()` (the task's doc_to_visual on the request's
    doc) yields; a VideoError, naming why, for anything else."""
    try:
        visuals = visuals_of()
    except (Exception, SystemExit) as exc:  # harness utils (e.g. MLVU's) call sys.exit on a missing video
        detail = str(exc) if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
        raise VideoError(detail, "the task's doc_to_visual could not locate the video") from None
    paths = [v for v in (visuals or []) if isinstance(v, str)]
    if len(paths) != 1:
        raise VideoError(repr(visuals)[:200], f"expected one video path from doc_to_visual, got {len(paths)}")
    return paths[0]


def video_job(request, request_type: str, eos_token_id, args, video_path_of):
    """(video path, frame plan) of a request, for ordering, prefetching and sharding; None
    when it cannot be told up front (the request's own step then reports why).
    `video_path_of(doc_to_visual, doc_id, task, split)` locates the video."""
    try:
        _, arg, doc_to_visual, doc_id, task, split = request.args
        overrides = split_generation_kwargs(copy.deepcopy(arg), eos_token_id)[2] if request_type == "generate_until" else {}
        return video_path_of(doc_to_visual, doc_id, task, split), frame_plan_for(request, overrides, args)
    except (Exception, SystemExit):
        return None
