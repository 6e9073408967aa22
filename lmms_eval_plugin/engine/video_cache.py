"""Pooled visual features of the last N videos (`video_cache=N`).

A benchmark asks several questions per video (Video-MME: 3 per video). The features a
question needs depend only on the video file, the frame plan, the pooling settings and
the checkpoint, so the key is exactly that; a second question on the same video skips
decoding and the vision tower and gets the very same tensor (bit-exact by construction).
The file's size and modification time are part of the key, so a video rewritten during
a run is encoded again.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class VideoKey:
    path: str  # resolved absolute path
    size: int
    mtime_ns: int
    frame_plan: str
    pooling: str
    checkpoint: str

    @classmethod
    def of(cls, path: str, frame_plan: str, pooling: str, checkpoint: str) -> VideoKey | None:
        """The key of an existing file; None when the file cannot be stat'ed (loading it
        will then fail with the usual message, and nothing is cached)."""
        try:
            real = os.path.realpath(path)
            st = os.stat(real)
        except (OSError, TypeError, ValueError):
            return None
        return cls(real, st.st_size, st.st_mtime_ns, frame_plan, pooling, checkpoint)


class VideoFeatureCache:
    """Least-recently-used map VideoKey -> prepared video; capacity 0 keeps nothing."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._entries: OrderedDict = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: VideoKey | None):
        if key is None or key not in self._entries:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return self._entries[key]

    def put(self, key: VideoKey | None, value) -> None:
        if key is None or self.capacity <= 0:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __contains__(self, key) -> bool:
        return key is not None and key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
