"""Decoded frames on disk, shared by runs, processes and nodes (`frame_cache=DIR`).

An entry holds what a reader returned for one (video file, frame plan): the sampled frame
indices over the whole video and the frames (uint8 RGB at the video's resolution), before
anything checkpoint-specific, so every run of any checkpoint with the same plan can use it.
Layout of `DIR`:

    <key>/meta.json               indices, total_frames, avg_fps, backend, frame shape, the
                                  key's fields, a CRC32 of its own content
    <key>/frames_<start>_<end>.npy  the frames at positions [start, end) of the sampled list:
                                  a plain .npy (np.load reads it) plus a trailer of one CRC32
                                  per frame and one of the .npy header
    .lock                         taken only to evict

Decode workers split a video's sampled frames into ranges (frames.part_slice), so an entry
fills piece by piece, and runs with other splits leave overlapping pieces: a lookup joins
any pieces that cover the asked range and reads only the frames it needs (hence a CRC per
frame: a worker's half of a video stored whole reads half the file).

Safe when shared: every file is written to a temporary name in its own folder, fsync'ed,
then renamed over its final name (atomic on POSIX filesystems and NFS), so a reader sees a
whole file or none; two writers of one piece write the same bytes and the last rename wins.
A torn or corrupt file (size, trailer or CRC wrong) is logged, removed and treated as
missing, never used. Eviction renames an entry away before deleting it, so a reader or a
writer meets a whole entry or none.

Why CRC32 and not a cryptographic hash: the threat is accidental damage (a torn copy, a
bad disk block, a truncated sync), which CRC32 detects (every burst up to 32 bits, anything
else but 1 in 2^32), not forgery. On the 2-core EPYC of the tests, zlib.crc32 checks
113 MB (256 frames of 384x384) in 16 ms, blake2b in 83 ms, sha256 in 55 ms; reading the
same bytes from the page cache takes about 20 ms, so CRC32 keeps a hit near copy speed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import socket
import struct
import time
import uuid
import zlib
from dataclasses import dataclass

import numpy as np
from loguru import logger

FORMAT_VERSION = 1  # part of every key: a new layout or reader convention never meets old entries
TRAILER_MAGIC = b"LVUFC\x00\x00\x01"
PIECE = re.compile(r"frames_(\d+)_(\d+)\.npy")
DECODE_S = re.compile(r"decode_s_(\d+)_(\d+)\.json")  # what decoding a piece's range took, for the seconds a hit saves
ENTRY = re.compile(r"[0-9a-f]{32}")  # only folders named like a key are ever evicted
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".evict-"
STALE_TMP_S = 3600  # a temporary file this old belongs to a writer that died
LOCK_TIMEOUT_S = 60.0  # another process evicting holds the lock; after this, skip evicting

_warned: set[str] = set()  # folders already warned about in this process


class CorruptPiece(Exception):
    """A cached file failed its size, trailer or checksum test."""


@dataclass
class CachedFrames:
    frames: np.ndarray  # (end - start, H, W, 3) uint8
    indices: list[int]  # the whole video's sampled indices, not only [start, end)
    total_frames: int
    avg_fps: float
    backend: str
    start: int = 0
    end: int = 0


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stored: int = 0  # pieces written by this process
    bytes_read: int = 0
    bytes_written: int = 0
    evicted: int = 0  # entries this process removed for the cap
    corrupt: int = 0  # files found damaged and removed


@dataclass
class _Meta:
    indices: list[int]
    total_frames: int
    avg_fps: float
    backend: str
    frame_shape: tuple[int, int, int] | None


class FrameCache:
    """The frame cache in `folder`, capped at `cap_gb` GB (1e9 bytes; None: no cap).

    Nothing here raises on a filesystem error: an unwritable folder, a full disk or any
    OSError on a write turns writing off for this process with one warning (lookups go on,
    a read-only cache filled elsewhere still serves), and a failed read is a miss."""

    def __init__(self, folder: str, cap_gb: float | None = None):
        if cap_gb is not None and not cap_gb > 0:
            raise ValueError(f"frame cache: the cap must be a positive number of GB, got {cap_gb!r}")
        self.folder = os.path.abspath(folder)
        self.cap_bytes = None if cap_gb is None else int(cap_gb * 1e9)
        self.stats = CacheStats()
        self.writable = True
        self._fields: dict[str, dict] = {}  # key -> the fields key() hashed, for meta.json
        self._sizes: dict[str, tuple[int, int, int]] = {}  # entry -> (its folder's mtime_ns, last use, bytes)
        try:
            os.makedirs(self.folder, exist_ok=True)
            if not os.access(self.folder, os.W_OK | os.X_OK):
                raise PermissionError(f"no write permission on {self.folder}")
        except OSError as e:
            self._disable(e)

    # -- keys -----------------------------------------------------------------------------

    def key(self, path: str, plan_key: str) -> str | None:
        """The entry of `path` sampled by the plan `plan_key`; None when the file cannot be
        stat'ed (loading it then fails with the reader's message; nothing is cached).

        The file's identity is its real path, size and modification time in nanoseconds,
        not a hash of its content: hashing reads the whole file (a one-hour video is 1 to
        4 GB, seconds on a shared filesystem) before every lookup, when a hit is meant to
        skip touching the video at all. Any rewrite (copy, download, re-encode) changes the
        mtime, so a changed video misses; a copy elsewhere (another path) misses too,
        which only costs one decode."""
        try:
            real = os.path.realpath(path)
            st = os.stat(real)
        except (OSError, TypeError, ValueError):
            return None
        fields = {"version": FORMAT_VERSION, "path": real, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "plan": str(plan_key)}
        key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]
        self._fields[key] = fields
        return key

    # -- reading --------------------------------------------------------------------------

    def meta(self, key: str | None) -> CachedFrames | None:
        """The entry's indices, counts and backend with no frames (what a decode worker
        needs to find its part's range); None when there is no valid meta.json. Not
        counted as a hit or a miss."""
        meta = self._read_meta(key) if key else None
        if meta is None:
            return None
        return CachedFrames(_empty(meta.frame_shape), meta.indices, meta.total_frames, meta.avg_fps, meta.backend)

    def lookup(self, key: str | None, start: int = 0, end: int | None = None) -> CachedFrames | None:
        """The frames at positions [start, end) of the entry's sampled list (end None: to
        the last), if stored pieces cover that range; else None."""
        found = self._lookup(key, start, end) if key else None
        if found is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        self.stats.bytes_read += found.frames.nbytes
        try:  # the entry's last use, for least-recently-used eviction
            os.utime(os.path.join(self.folder, key, "meta.json"))
        except OSError:
            pass
        return found

    def _lookup(self, key: str, start: int, end: int | None) -> CachedFrames | None:
        meta = self._read_meta(key)
        if meta is None:
            return None
        n = len(meta.indices)
        end = n if end is None else end
        if not 0 <= start <= end <= n:
            raise ValueError(f"frame cache: range [{start}, {end}) is outside the entry's {n} sampled frames")
        entry = os.path.join(self.folder, key)
        bad: set[str] = set()
        while True:  # a corrupt piece is dropped and the cover sought again without it
            try:
                pieces = [(int(m[1]), int(m[2]), name) for name in os.listdir(entry) if (m := PIECE.fullmatch(name))]
            except OSError:
                return None
            cover = _cover([p for p in pieces if p[2] not in bad and p[0] < p[1] <= n], start, end)
            if cover is None:
                return None
            try:
                frames = self._read_cover(entry, cover, start, end, meta.frame_shape)
            except CorruptPiece as e:
                name, reason = e.args
                bad.add(name)
                self._drop(os.path.join(entry, name), reason)
                continue
            except OSError:  # removed or replaced under us (eviction): a miss
                return None
            return CachedFrames(frames, meta.indices, meta.total_frames, meta.avg_fps, meta.backend, start, end)

    def decode_s(self, key: str | None, start: int = 0, end: int | None = None) -> float:
        """Seconds the decodes that stored positions [start, end) took (0.0 where unknown): what
        a hit on that range saved. Parts stored by another split count where they lie inside."""
        entry = os.path.join(self.folder, key or "")
        total = 0.0
        try:
            names = os.listdir(entry) if key else []
        except OSError:
            return 0.0
        for name in names:
            m = DECODE_S.fullmatch(name)
            if not m or int(m[1]) < start or (end is not None and int(m[2]) > end):
                continue
            try:
                with open(os.path.join(entry, name), "rb") as f:
                    total += max(0.0, float(json.loads(f.read())["decode_s"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a statistic only: a damaged one is not worth a warning
        return total

    def _read_cover(self, entry: str, cover: list[tuple[int, int, str]], start: int, end: int, shape) -> np.ndarray:
        out = None
        pos = start
        for s, e, name in cover:
            stop = min(e, end)
            with open(os.path.join(entry, name), "rb") as f:
                head_len, shape, crcs = _piece_header(f, name, e - s, shape)
                if out is None:
                    out = np.empty((end - start, *shape), np.uint8)
                _read_frames(f, name, head_len, crcs, pos - s, out[pos - start : stop - start])  # straight into the result
            pos = stop
        return out if out is not None else _empty(shape)

    def _read_meta(self, key: str) -> _Meta | None:
        path = os.path.join(self.folder, key, "meta.json")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError:
            return None
        try:
            doc = json.loads(raw)
            crc = doc.pop("crc32")
            if crc != _json_crc(doc) or doc["version"] != FORMAT_VERSION:
                raise ValueError("checksum or version mismatch")
            shape = doc["frame_shape"]
            return _Meta([int(i) for i in doc["indices"]], int(doc["total_frames"]), float(doc["avg_fps"]), str(doc["backend"]),
                         tuple(shape) if shape else None)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            self._drop(path, f"meta.json unreadable ({e})")
            return None

    def _drop(self, path: str, reason: str) -> None:
        self.stats.corrupt += 1
        logger.warning(f"frame cache: {reason}: {path}; removed, the video is decoded again")
        try:
            os.remove(path)
        except OSError:
            pass

    # -- writing --------------------------------------------------------------------------

    def store_meta(self, key: str | None, indices, total_frames: int, avg_fps: float, backend: str,
                   frame_shape: tuple[int, int, int] | None = None) -> None:
        """Write the entry's meta.json (every part's worker may; they write the same bytes).
        `frame_shape` (H, W, 3), when known, lets a lookup check every piece against it."""
        if not key or not self.writable:
            return
        doc = {"version": FORMAT_VERSION, "key": key, "source": self._fields.get(key), "indices": [int(i) for i in indices],
               "total_frames": int(total_frames), "avg_fps": float(avg_fps), "backend": str(backend),
               "frame_shape": [int(d) for d in frame_shape] if frame_shape else None}
        doc["crc32"] = _json_crc(doc)
        data = json.dumps(doc, sort_keys=True).encode()
        self._write(key, "meta.json", [data])

    def store(self, key: str | None, start: int, frames: np.ndarray) -> None:
        """Write the frames at positions [start, start + len(frames)) as one piece. Never
        raises on a filesystem error (see the class); a wrong array is a ValueError."""
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frame cache: frames must be a uint8 (n, H, W, 3) array, got {getattr(frames, 'dtype', type(frames))} "
                             f"{getattr(frames, 'shape', '')}")
        if start < 0:
            raise ValueError(f"frame cache: a piece cannot start at {start}")
        if not key or not self.writable or len(frames) == 0:
            return
        name = f"frames_{start}_{start + len(frames)}.npy"
        chunks = _piece_bytes(np.ascontiguousarray(frames))
        size = sum(len(c) for c in chunks)
        try:
            if os.path.getsize(os.path.join(self.folder, key, name)) == size:
                return  # another run or process stored it: the same bytes
        except OSError:
            pass
        if self._write(key, name, chunks):
            self.stats.stored += 1
            self.stats.bytes_written += size
            if self.cap_bytes is not None:
                self._maybe_evict(keep=key)

    def store_decode_s(self, key: str | None, start: int, end: int, seconds: float) -> None:
        """Record what decoding positions [start, end) took (the end-of-run line's seconds saved)."""
        if key and self.writable and end > start:
            self._write(key, f"decode_s_{start}_{end}.json", [json.dumps({"decode_s": round(float(seconds), 6)}).encode()])

    def _write(self, key: str, name: str, chunks: list) -> bool:
        entry = os.path.join(self.folder, key)
        for attempt in range(2):  # a concurrent eviction may remove the entry's folder once
            tmp = os.path.join(entry, f"{TMP_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}-{name}")
            try:
                os.makedirs(entry, exist_ok=True)
                with open(tmp, "wb") as f:
                    for chunk in chunks:
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, os.path.join(entry, name))
                return True
            except FileNotFoundError:
                if attempt:
                    return False
            except OSError as e:
                try:
                    os.remove(tmp)
                except OSError:
                    pass
                self._disable(e)
                return False
        return False

    def _disable(self, error: OSError) -> None:
        self.writable = False
        if self.folder not in _warned:
            _warned.add(self.folder)
            logger.warning(f"frame cache: cannot write to {self.folder} ({error}); this process goes on without storing frames")

    # -- the cap --------------------------------------------------------------------------

    def _maybe_evict(self, keep: str) -> None:
        """Evict least recently used entries while the folder is over the cap: a quick
        total first (unchanged entries are not re-read), then, only when over, an exact
        scan and the eviction under the folder's lock (other processes and nodes evict too)."""
        if sum(size for _, size, _ in self._scan(exact=False)) <= self.cap_bytes:
            return
        from filelock import FileLock, Timeout  # only a capped cache that fills takes the lock

        try:
            with FileLock(os.path.join(self.folder, ".lock"), timeout=LOCK_TIMEOUT_S):
                entries = self._scan(exact=True)
                total = sum(size for _, size, _ in entries)
                for _, size, name in sorted(entries):
                    if total <= self.cap_bytes:
                        break
                    if name == keep:  # the entry being written stays, even alone over the cap
                        continue
                    trash = os.path.join(self.folder, f"{TRASH_PREFIX}{uuid.uuid4().hex}")
                    try:
                        os.rename(os.path.join(self.folder, name), trash)
                    except OSError:
                        continue  # another node evicted it
                    shutil.rmtree(trash, ignore_errors=True)
                    total -= size
                    self.stats.evicted += 1
        except Timeout:
            return
        except OSError as e:
            self._disable(e)

    def _scan(self, exact: bool) -> list[tuple[int, int, str]]:
        """(last use in ns, bytes, name) of every entry. Not `exact`: an entry whose folder's
        modification time (which every file added, replaced or removed in it moves) is the
        one seen last is not re-read; its last use may then be stale. `exact` also removes
        what dead writers and interrupted evictions left behind."""
        now = time.time_ns()
        entries = []
        for item in os.scandir(self.folder):
            if exact and item.name.startswith(TRASH_PREFIX):
                shutil.rmtree(item.path, ignore_errors=True)
            if not (ENTRY.fullmatch(item.name) and item.is_dir(follow_symlinks=False)):
                continue
            try:
                stamp = item.stat(follow_symlinks=False).st_mtime_ns
                seen = self._sizes.get(item.name)
                if exact or seen is None or seen[0] != stamp:
                    last, size = 0, 0
                    for f in os.scandir(item.path):
                        st = f.stat(follow_symlinks=False)
                        if exact and f.name.startswith(TMP_PREFIX) and now - st.st_mtime_ns > STALE_TMP_S * 1e9:
                            os.remove(f.path)
                            continue
                        last, size = max(last, st.st_mtime_ns), size + st.st_size
                    seen = self._sizes[item.name] = (stamp, last, size)
            except FileNotFoundError:  # evicted by another process meanwhile
                continue
            entries.append((seen[1], seen[2], item.name))
        for gone in set(self._sizes) - {name for *_, name in entries}:
            self._sizes.pop(gone, None)
        return entries


# -- the piece format ---------------------------------------------------------------------


def _piece_bytes(frames: np.ndarray) -> list:
    """A .npy file (header, then the frames) followed by the trailer: one CRC32 per frame,
    the header's CRC32, the frame count, the magic."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(frames))
    head = header.getvalue()
    flat = frames.reshape(len(frames), -1)
    crcs = np.array([zlib.crc32(row) for row in flat], "<u4")
    trailer = crcs.tobytes() + struct.pack("<IQ", zlib.crc32(head), len(frames)) + TRAILER_MAGIC
    return [head, memoryview(frames).cast("B"), trailer]


def _piece_header(f, name: str, n: int, shape) -> tuple[int, tuple[int, int, int], np.ndarray]:
    """The header's length, the frame shape and the per-frame CRC32s of the n-frame piece
    open in `f`, after checking the header, the file's size and the trailer;
    CorruptPiece(name, reason) when anything does not match."""
    try:
        version = np.lib.format.read_magic(f)
        if version != (1, 0):
            raise ValueError(f"npy version {version}")
        piece_shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    except Exception as e:  # noqa: BLE001 - whatever garbage makes numpy's header parser raise, the piece is damaged
        raise CorruptPiece(name, f"unreadable header ({type(e).__name__}: {e})") from None
    head_len = f.tell()
    if fortran or dtype != np.uint8 or len(piece_shape) != 4 or piece_shape[0] != n or piece_shape[3] != 3:
        raise CorruptPiece(name, f"header says {dtype} {piece_shape}, the name says {n} frames")
    if shape is not None and tuple(piece_shape[1:]) != tuple(shape):
        raise CorruptPiece(name, f"frames of {piece_shape[1:]}, the entry's are {tuple(shape)}")
    data_len = n * int(np.prod(piece_shape[1:]))
    trailer_len = 4 * n + 12 + len(TRAILER_MAGIC)
    size = os.fstat(f.fileno()).st_size
    if size != head_len + data_len + trailer_len:
        raise CorruptPiece(name, f"{size} bytes, expected {head_len + data_len + trailer_len} (torn or truncated)")
    f.seek(head_len + data_len)
    trailer = f.read(trailer_len)
    head_crc, count = struct.unpack("<IQ", trailer[4 * n : 4 * n + 12])
    f.seek(0)
    if trailer[-len(TRAILER_MAGIC):] != TRAILER_MAGIC or count != n or zlib.crc32(f.read(head_len)) != head_crc:
        raise CorruptPiece(name, "bad trailer")
    return head_len, tuple(piece_shape[1:]), np.frombuffer(trailer, "<u4", n)


def _read_frames(f, name: str, head_len: int, crcs: np.ndarray, a: int, out: np.ndarray) -> None:
    """Read the piece's frames a, a+1, ... into `out` (C-contiguous), each checked against
    its CRC32."""
    frame_bytes = out[0].nbytes if len(out) else 0
    f.seek(head_len + a * frame_bytes)
    if f.readinto(memoryview(out).cast("B")) != out.nbytes:
        raise CorruptPiece(name, "short read")
    for i, row in enumerate(out.reshape(len(out), -1)):
        if zlib.crc32(row) != crcs[a + i]:
            raise CorruptPiece(name, f"checksum mismatch at frame {a + i}")


def _cover(pieces: list[tuple[int, int, str]], start: int, end: int) -> list[tuple[int, int, str]] | None:
    """Pieces that together cover [start, end), fewest first-reaching ones (greedy interval
    cover); None when a gap remains. An empty range needs no piece."""
    chosen, pos = [], start
    while pos < end:
        best = max((p for p in pieces if p[0] <= pos < p[1]), key=lambda p: p[1], default=None)
        if best is None:
            return None
        chosen.append(best)
        pos = best[1]
    return chosen


def _json_crc(doc: dict) -> int:
    return zlib.crc32(json.dumps(doc, sort_keys=True).encode())


def _empty(shape) -> np.ndarray:
    return np.zeros((0, *(shape or (0, 0, 3))), np.uint8)
