"""The KV cache of a video's shared prompt prefix (`prefix_cache=true`).

The video comes first in the prompt, so every question on a video shares one prefix:
the header plus the visual tokens. Its KV cache is computed once per video (under the
request's RoPE override, which depends only on the visual token count, so it is the same
for every question of the video) and each question continues from a copy of it, so the
stored cache is never touched. A prompt whose token ids do not start with the stored
prefix, or that belongs to another video key, misses.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable


def visual_prefix_length(ids: list[int], video_token_id: int) -> int:
    """Length of the prompt up to and including its last visual token (0 when there is none)."""
    for i in range(len(ids) - 1, -1, -1):
        if ids[i] == video_token_id:
            return i + 1
    return 0


def copy_cache(cache):
    """An independent cache of the same kind holding bitwise copies of the keys and values."""
    return copy.deepcopy(cache)


class PrefixCache:
    """One entry: the prefix of the video being answered (requests are grouped by video,
    so one entry is all a run needs)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._key: Hashable | None = None
        self._prefix: tuple[int, ...] = ()
        self._cache = None
        self.hits = 0
        self.misses = 0

    def lookup(self, video_key: Hashable | None, ids: list[int], last_use: bool = False):
        """A copy of the stored cache when `ids` extends the stored prefix of `video_key`
        by at least one token; else None. `last_use`: no later question will ask for it, so
        the stored cache itself is handed over (no copy) and forgotten."""
        n = len(self._prefix)
        if (self.enabled and self._cache is not None and video_key is not None and video_key == self._key
                and len(ids) > n and tuple(ids[:n]) == self._prefix):
            self.hits += 1
            if last_use:
                cache = self._cache
                self.clear()
                return cache
            return copy_cache(self._cache)
        self.misses += 1
        return None

    def store(self, video_key: Hashable | None, prefix_ids: list[int], cache) -> None:
        if not self.enabled or video_key is None:
            return
        self._key, self._prefix, self._cache = video_key, tuple(prefix_ids), cache

    def clear(self) -> None:
        self._key, self._prefix, self._cache = None, (), None


def prefix_kv(model, store: PrefixCache, video_key, ids: list[int], input_ids, features, chunk: int, video_continues: bool,
              needed_after: int = 1):
    """(KV cache of the prompt through its visual tokens, prefix cache hit?), or (None,
    False) for the one-pass path. The split path is taken when the prefix is cached, worth
    caching (`video_continues`: another question on this video follows) or chunked
    (`chunk` > 0). `needed_after`: tokens that must follow the prefix (positions whose
    logits are used)."""
    from lmms_eval_plugin.engine.chunked_prefill import prefill_cache

    n = visual_prefix_length(ids, model.config.video_token_id)
    if n == 0 or len(ids) - n < needed_after:
        return None, False
    cache = store.lookup(video_key, ids, last_use=not video_continues)
    if cache is not None:
        return cache, True
    keep = store.enabled and video_continues
    store.clear()  # another video's prefix is of no more use: free it now
    if not (keep or chunk):
        return None, False
    cache = prefill_cache(model, input_ids[:, :n], features, chunk)
    if keep:
        store.store(video_key, ids[:n], cache)
        cache = copy_cache(cache)  # the question continues on a copy; the stored prefix stays as it is
    return cache, False
