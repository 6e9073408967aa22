"""The reuse counts of one process, or summed over the node, as the log line says them."""

from __future__ import annotations

from lmms_eval_plugin.engine.frame_source import decode_plan

COUNTERS = ("video_hits", "video_misses", "prefix_hits", "prefix_misses", "prefetched", "waited_s", "wall_s",
            "frame_cache_hits", "frame_cache_stored", "frame_cache_misses", "frame_cache_saved_s")


def counters(video_cache, prefix_cache, frames) -> dict:
    """`frames`: the FrameSource (videos served ahead, seconds waited for frames, batch wall time)."""
    states = getattr(frames, "frame_cache_states", {})
    return dict(zip(COUNTERS, (video_cache.hits, video_cache.misses, prefix_cache.hits, prefix_cache.misses, frames.prefetched,
                               frames.waited_s, frames.wall_s, states.get("hit", 0), states.get("stored", 0), states.get("miss", 0),
                               getattr(frames, "frame_cache_saved_s", 0.0))))


def summed(per_process: list[dict]) -> dict:
    return {k: sum(c[k] for c in per_process) for k in COUNTERS}


def describe(c: dict, args) -> str:
    workers, depth = decode_plan(args)
    return (f"video cache {c['video_hits']} hits / {c['video_misses']} misses (video_cache={args.video_cache}), "
            f"prefix cache {c['prefix_hits']} hits / {c['prefix_misses']} misses "
            f"(prefix_cache={str(args.prefix_cache).lower()}), {c['prefetched']} videos decoded ahead "
            f"(decode_workers={workers}, prefetch={depth}), waited {c['waited_s']:.1f} s for frames ({_share(c)} of {c['wall_s']:.1f} s), "
            f"prefill_chunk={args.prefill_chunk}" + _frame_cache(c, args))


def _frame_cache(c: dict, args) -> str:
    if not getattr(args, "frame_cache", None):
        return ""
    return (f", frame cache ({getattr(args, 'frame_cache_stage', 'decoded')} frames) {c['frame_cache_hits']} videos read from {args.frame_cache} (not decoded: "
            f"{_seconds(c['frame_cache_saved_s'])} s of decoding saved, as long as their stored decodes took) / "
            f"{c['frame_cache_stored']} decoded and stored / {c['frame_cache_misses']} decoded, not stored")


def _seconds(s: float) -> str:
    """Short videos decode in milliseconds: keep them visible."""
    return f"{s:.1f}" if s >= 10 else f"{s:.3f}"


def _share(c: dict) -> str:
    return f"{100 * c['waited_s'] / c['wall_s']:.0f}%" if c["wall_s"] > 0 else "n/a"
