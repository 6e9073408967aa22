"""The reuse counts of one process, or summed over the node, as the log line says them."""

from __future__ import annotations

COUNTERS = ("video_hits", "video_misses", "prefix_hits", "prefix_misses", "prefetched")


def counters(video_cache, prefix_cache, prefetched: int) -> dict:
    return dict(zip(COUNTERS, (video_cache.hits, video_cache.misses, prefix_cache.hits, prefix_cache.misses, prefetched)))


def summed(per_process: list[dict]) -> dict:
    return {k: sum(c[k] for c in per_process) for k in COUNTERS}


def describe(c: dict, args) -> str:
    return (f"video cache {c['video_hits']} hits / {c['video_misses']} misses (video_cache={args.video_cache}), "
            f"prefix cache {c['prefix_hits']} hits / {c['prefix_misses']} misses "
            f"(prefix_cache={str(args.prefix_cache).lower()}), {c['prefetched']} videos decoded ahead "
            f"(prefetch={args.prefetch}), prefill_chunk={args.prefill_chunk}")
