"""Decode the next videos in background threads (`prefetch=N`).

No longer on a run's path: a decode in a thread cannot be stopped when it hangs, so every
decode now runs in a process (decode_workers.py; `decode_workers=0` too). Kept for callers
that load something other than video files; remove once none does.

Frame decoding runs on the CPU; on a GPU machine the device would otherwise wait for it
before every video. While the model works on one video, the next N distinct videos of
the (grouped) request order are decoded by a thread pool. A prefetched video's failure
is the decoder's own exception, kept in its future and raised when that video's request
asks for it, so it surfaces on its own document exactly as a synchronous load would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor


class VideoPrefetcher:
    def __init__(self, load: Callable, depth: int):
        """`load(*job)` decodes one video; `depth` videos at most are decoded ahead (0: off)."""
        self.load = load
        self.depth = max(0, int(depth))
        self._pool = ThreadPoolExecutor(max_workers=self.depth, thread_name_prefix="lvu_prefetch") if self.depth else None
        self._futures: dict[Hashable, Future] = {}
        self.prefetched = 0  # loads served from a background decode
        self.last_wait_s = 0.0  # how long the last take() waited for its video

    def ahead(self, jobs: list[tuple[Hashable, tuple]], keep: Hashable = None) -> None:
        """Start decoding the (key, load args) jobs not already under way, up to `depth` in
        flight; decodes of other videos (except `keep`, the current one) are dropped, so a
        video that is never asked for cannot hold a slot."""
        if self._pool is None:
            return
        wanted = {key for key, _ in jobs}
        for key in [k for k in self._futures if k not in wanted and k != keep]:
            self.discard(key)
        for key, args in jobs:
            if len(self._futures) >= self.depth:
                break
            if key not in self._futures:
                self._futures[key] = self._pool.submit(self.load, *args)

    def take(self, key: Hashable, args: tuple):
        """The decoded video of `key`: the background result when there is one (its
        exception re-raised as is), else decoded now."""
        started = time.monotonic()
        future = self._futures.pop(key, None)
        try:
            if future is None:
                return self.load(*args)
            self.prefetched += 1
            return future.result()
        finally:
            self.last_wait_s = time.monotonic() - started

    def discard(self, key: Hashable) -> None:
        """Forget a job whose video is no longer needed (e.g. its features were cached)."""
        future = self._futures.pop(key, None)
        if future is not None:
            future.cancel()

    def close(self) -> None:
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
