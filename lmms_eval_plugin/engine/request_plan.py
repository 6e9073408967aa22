"""What one request asks for: its video, its frame plan and its generation kwargs.

The frame count reaches the model through the task's `metadata` (copied by lmms-eval
into every Instance; other harness models ignore it): `lvu_num_frames`, or `lvu_fps`
with `lvu_max_frames`. Generation kwargs may also carry `num_frames` / `fps` /
`max_frames` (e.g. `--gen_kwargs num_frames=64`); those win. The model's own
`num_frames`/`fps`/`max_frames` args are the fallback.
"""

from __future__ import annotations

import copy

from loguru import logger

from lmms_eval_plugin.engine.video import FramePlan, VideoError
from lmms_eval_plugin.failures.errors import RequestArgError

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


class FramePlanError(ValueError):
    """An impossible frame count, rate or cap from generation kwargs or task metadata."""


def _checked(value, source: str, key: str, cast, allowed: str, positive=lambda v: v >= 1):
    try:
        number = cast(value)
        if isinstance(value, float) and cast is int and not value.is_integer():
            raise ValueError
        ok = positive(number)
    except (TypeError, ValueError):
        ok = False
    if not ok:  # as the user typed it: lmms-eval turns `-3` into -3.0
        shown = f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else value
        raise FramePlanError(f"{source} {key}={shown} is impossible; allowed: {allowed}")
    return number


def frame_plan_for(request, overrides: dict, args) -> FramePlan:
    """The request's frame plan: generation kwargs, else task metadata, else the model args;
    a FramePlanError names the key and where it came from."""
    meta = getattr(request, "metadata", None) or {}

    def pick(kwarg: str, meta_key: str):
        if overrides.get(kwarg) is not None:
            return overrides[kwarg], "--gen_kwargs", kwarg
        if meta.get(meta_key) is not None:
            return meta[meta_key], "task metadata", meta_key
        return None, None, None

    num, fps, cap = pick("num_frames", "lvu_num_frames"), pick("fps", "lvu_fps"), pick("max_frames", "lvu_max_frames")
    if num[0] is None and fps[0] is None:  # the task says nothing: the model args decide
        if args.fps is None:
            return FramePlan(num_frames=args.num_frames, fps=None, max_frames=None)
        fps = (args.fps, "model arg", "fps")
        cap = cap if cap[0] is not None else (args.max_frames, "model arg", "max_frames")
    if fps[0] is not None and num[0] is None:
        rate = _checked(fps[0], fps[1], fps[2], float, "a number > 0", lambda v: v > 0)
        limit = None if cap[0] is None else _checked(cap[0], cap[1], cap[2], int, "an integer >= 1")
        return FramePlan(num_frames=None, fps=rate, max_frames=limit)
    return FramePlan(num_frames=_checked(num[0], num[1], num[2], int, "an integer >= 1"), fps=None, max_frames=None)


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


def check_requests(requests, request_type: str, eos_token_id, args, warned: set) -> None:
    """Before the first request is answered: an impossible frame plan (generation kwargs or
    task metadata) or a negative temperature ends the run (RequestArgError, naming the key,
    the task and the doc); a generation kwarg lvu_ext does not use is warned about, once per
    task and key (`warned` remembers them across calls)."""
    used = set(GENERATE_KEYS) | set(FRAME_KEYS) | {"until"}
    for request in requests:
        _, arg, _, doc_id, task, _ = request.args
        try:
            overrides = {}
            if request_type == "generate_until":
                gen_kwargs = dict(arg or {})
                if gen_kwargs.get("temperature") is not None:  # the harness's convention: > 0 samples, 0 is greedy
                    _checked(gen_kwargs["temperature"], "--gen_kwargs", "temperature", float, "a number >= 0 (0: greedy)",
                             lambda v: v >= 0)
                for key in sorted(set(gen_kwargs) - used):
                    if (task, key) not in warned:
                        warned.add((task, key))
                        logger.warning(f"lvu_ext: {task}: generation kwarg {key}={gen_kwargs[key]!r} is not used (lvu_ext "
                                       f"passes {', '.join(GENERATE_KEYS)} to generate and reads {', '.join(FRAME_KEYS)}, until)")
                overrides = split_generation_kwargs(copy.deepcopy(gen_kwargs), eos_token_id)[2]
            frame_plan_for(request, overrides, args)
        except FramePlanError as exc:
            raise RequestArgError(f"lvu_ext: {task} doc {doc_id}: {exc} -> run stopped before any request was answered") from None
