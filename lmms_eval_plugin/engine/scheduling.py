"""Order of work within one process: the questions of one video next to each other.

lmms-eval hands a model every request of a type at once, ordered by task and document.
Answering the questions of one video back to back is what lets the video cache and the
prefix cache hit (and keeps them at one entry). The answers are put back in the
harness's order by the caller, so reordering is invisible outside the model.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence


def group_by_video(keys: Sequence[Hashable | None]) -> list[int]:
    """Indices into `keys` such that equal keys are adjacent. Groups come in the order of
    their first request, and requests keep their order inside a group (a stable sort);
    a None key (video not known up front) is a group of its own, left where it was."""
    first_seen: dict = {}
    order = []
    for index, key in enumerate(keys):
        group = first_seen.setdefault(key, index) if key is not None else index
        order.append((group, index))
    order.sort()
    return [index for _, index in order]


def upcoming_distinct(keys: Sequence[Hashable | None], start: int, count: int) -> list:
    """The next `count` distinct non-None keys after position `start` (for prefetching),
    skipping the key at `start` itself."""
    current = keys[start] if 0 <= start < len(keys) else None
    found: list = []
    for key in keys[start + 1 :]:
        if len(found) >= count:
            break
        if key is None or key == current or key in found:
            continue
        found.append(key)
    return found


def run_grouped(jobs: Sequence[Hashable | None], answer: Callable, prefetcher=None, cached: Callable = lambda job: False,
                progress: Callable = lambda it: it) -> list:
    """`answer(index, video_continues)` for every request, grouped by video (`jobs[i]`: the
    request's (path, frame plan), or None); `video_continues` says the next request is on the
    same video. Before each request the prefetcher is given the next distinct videos that
    are not `cached`. Results come back in the input order."""
    order = group_by_video(jobs)
    ordered = [jobs[i] for i in order]
    results = [None] * len(jobs)
    for position, index in enumerate(progress(order)):
        if prefetcher is not None and prefetcher.depth:
            upcoming = [job for job in upcoming_distinct(ordered, position, prefetcher.depth) if not cached(job)]
            current = ordered[position]
            # a worker pool serves in submission order: the video needed now goes first, or it
            # would queue behind the look-ahead (threads load it in the caller instead)
            if getattr(prefetcher, "prepares_current", False) and current is not None and not cached(current):
                upcoming = [current, *upcoming]
            prefetcher.ahead([(job, job) for job in upcoming], keep=current)
        following = ordered[position + 1] if position + 1 < len(ordered) else None
        results[index] = answer(index, following is not None and following == ordered[position])
    return results
