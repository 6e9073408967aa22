"""The on-disk frame cache (engine/frame_cache.py) on real files: round trips are exact,
concurrent writers and readers of one folder never see a torn piece, damage is detected and
removed, the cap evicts the least recently used entry, an unwritable folder warns once and
stores nothing, a rewritten video misses. Oracles: the arrays stored, numpy's own .npy
reader, the files left on disk."""

from __future__ import annotations

import multiprocessing
import os
import random
import time

import numpy as np
import pytest
from loguru import logger

from lmms_eval_plugin.engine.frame_cache import FrameCache
from lmms_eval_plugin.engine.frames import part_slice

PLAN = "32 uniform"


def _frames(seed: int, n: int, h: int = 12, w: int = 20) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _video(folder, name: str = "v.mp4", data: bytes = b"not really a video") -> str:
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


@pytest.fixture
def warnings():
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="WARNING")
    yield seen
    logger.remove(sink)


def _pieces(entry: str) -> list[str]:
    return sorted(n for n in os.listdir(entry) if n.startswith("frames_"))


def test_round_trip_whole_sub_range_and_gaps(tmp_path):
    cache = FrameCache(str(tmp_path / "cache"))
    key = cache.key(_video(tmp_path), PLAN)
    frames = _frames(0, 10)
    indices = [0, 3, 7, 11, 15, 19, 22, 26, 30, 33]
    cache.store_meta(key, indices, 34, 29.97, "pyav_sparse", frames.shape[1:])
    cache.store(key, 0, frames[:6])
    assert cache.lookup(key, 0, 10) is None  # [6, 10) not stored yet
    assert np.array_equal(cache.lookup(key, 1, 5).frames, frames[1:5])
    cache.store(key, 6, frames[6:])

    whole = cache.lookup(key)
    assert whole.frames.dtype == np.uint8 and np.array_equal(whole.frames, frames)
    assert (whole.indices, whole.total_frames, whole.avg_fps, whole.backend) == (indices, 34, 29.97, "pyav_sparse")
    assert np.array_equal(cache.lookup(key, 3, 8).frames, frames[3:8])  # spans both pieces
    assert cache.lookup(key, 4, 4).frames.shape == (0, 12, 20, 3)
    assert cache.meta(key).indices == indices
    # a piece is a plain .npy file: numpy's own reader gives the frames back
    entry = tmp_path / "cache" / key
    assert np.array_equal(np.load(entry / "frames_6_10.npy"), frames[6:])
    assert cache.stats.hits == 4 and cache.stats.misses == 1 and cache.stats.stored == 2
    assert cache.stats.bytes_written > frames.nbytes and cache.stats.bytes_read == frames[1:5].nbytes + frames.nbytes + frames[3:8].nbytes

    other = cache.key(_video(tmp_path, "w.mp4"), PLAN)
    assert cache.lookup(other) is None and cache.meta(other) is None
    assert cache.key(str(tmp_path / "missing.mp4"), PLAN) is None and cache.lookup(None) is None


def test_pieces_of_different_splits_join(tmp_path):
    cache = FrameCache(str(tmp_path))
    key = cache.key(_video(tmp_path), PLAN)
    frames = _frames(1, 9)
    cache.store_meta(key, range(9), 9, 10.0, "decord")
    cache.store(key, 0, frames[:4])  # one run split 4 + 5, another 5 + 4: any cover will do
    cache.store(key, 5, frames[5:])
    assert cache.lookup(key) is None
    cache.store(key, 0, frames[:5])
    assert np.array_equal(cache.lookup(key).frames, frames)
    assert np.array_equal(cache.lookup(key, 2, 7).frames, frames[2:7])
    with pytest.raises(ValueError, match="outside the entry's 9"):
        cache.lookup(key, 0, 10)
    with pytest.raises(ValueError, match="uint8"):
        cache.store(key, 0, frames.astype(np.float32))


# -- several processes and runs -------------------------------------------------------------

N, RUN_A_PARTS, RUN_B_PARTS = 24, 3, 2


def _worker(folder, videos, parts, cap_gb, seed, rounds, write, barrier, results):
    cache = FrameCache(folder, cap_gb)
    rng = random.Random(seed)
    expected = [_frames(v, N) for v in range(len(videos))]
    bad, hits = [], 0
    barrier.wait()
    for _ in range(rounds):
        for v in rng.sample(range(len(videos)), len(videos)):
            key = cache.key(videos[v], PLAN)
            for k in rng.sample(range(parts), parts):
                if write:
                    cache.store_meta(key, list(range(0, 3 * N, 3)), 3 * N, 25.0, "pyav")
                    part = part_slice(N, None, (k, parts))
                    cache.store(key, part.start, expected[v][part])
                a = rng.randrange(N)
                b = rng.randrange(a, N + 1)
                got = cache.lookup(key, a, b)
                if got is not None:
                    hits += 1
                    # an empty range is NO_FRAMES (0, 0, 0, 3) when meta.json holds no frame shape, as the readers' empty parts
                    same = got.frames.size == 0 if a == b else np.array_equal(got.frames, expected[v][a:b])
                    if not same or got.indices != list(range(0, 3 * N, 3)):
                        bad.append((v, a, b))
    results.put((seed, bad, hits, cache.stats.corrupt, cache.stats.evicted))


def _run_processes(tmp_path, cap_gb, rounds):
    folder = str(tmp_path / "cache")
    videos = [_video(tmp_path, f"v{v}.mp4", bytes([v]) * 100) for v in range(3)]
    ctx = multiprocessing.get_context("spawn")
    # run A: 3 processes splitting each video in 3; run B: 2 processes splitting in 2; 1 reader
    jobs = [(RUN_A_PARTS, True)] * 3 + [(RUN_B_PARTS, True)] * 2 + [(RUN_B_PARTS, False)]
    barrier, results = ctx.Barrier(len(jobs)), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(folder, videos, parts, cap_gb, seed, rounds, write, barrier, results))
             for seed, (parts, write) in enumerate(jobs)]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    for seed, bad, _, corrupt, _ in out:
        assert not bad, f"process {seed} read frames that differ from those stored: {bad[:5]}"
        assert corrupt == 0, f"process {seed} met a damaged piece"
    return folder, videos, out


def _check_files(folder: str) -> dict[str, list[str]]:
    """Every piece on disk holds exactly its frames (numpy's reader); no temporary file stays."""
    found = {}
    for key in os.listdir(folder):
        if key.startswith("."):
            continue
        entry = os.path.join(folder, key)
        assert not [n for n in os.listdir(entry) if n.startswith(".tmp-")]
        found[key] = _pieces(entry)
    return found


def test_three_processes_two_runs_share_one_folder(tmp_path):
    folder, videos, out = _run_processes(tmp_path, cap_gb=None, rounds=6)
    assert sum(hits for _, _, hits, _, _ in out) > 0
    cache = FrameCache(folder)
    splits = {f"frames_{s.start}_{s.stop}.npy" for parts in (RUN_A_PARTS, RUN_B_PARTS) for s in (part_slice(N, None, (k, parts)) for k in range(parts))}
    found = _check_files(folder)
    assert len(found) == len(videos)
    for v, path in enumerate(videos):
        key = cache.key(path, PLAN)
        assert set(found[key]) == splits
        for name in found[key]:
            s, e = map(int, name[len("frames_"):-len(".npy")].split("_"))
            assert np.array_equal(np.load(os.path.join(folder, key, name)), _frames(v, N)[s:e])
        assert np.array_equal(cache.lookup(key).frames, _frames(v, N))


def test_concurrent_writers_readers_and_evictions(tmp_path):
    # about two of the three entries fit: entries are evicted and written again while read
    entry_bytes = 2 * N * 12 * 20 * 3
    folder, videos, out = _run_processes(tmp_path, cap_gb=2.2 * entry_bytes / 1e9, rounds=6)
    assert sum(evicted for *_, evicted in out) > 0
    assert not [n for n in os.listdir(folder) if n.startswith(".evict-")]
    cache = FrameCache(folder)
    for key, names in _check_files(folder).items():
        v = next(v for v, path in enumerate(videos) if cache.key(path, PLAN) == key)
        for name in names:
            s, e = map(int, name[len("frames_"):-len(".npy")].split("_"))
            assert np.array_equal(np.load(os.path.join(folder, key, name)), _frames(v, N)[s:e])


# -- damage ---------------------------------------------------------------------------------


def _filled(tmp_path):
    cache = FrameCache(str(tmp_path / "cache"))
    key = cache.key(_video(tmp_path), PLAN)
    frames = _frames(2, 8)
    cache.store_meta(key, range(8), 8, 30.0, "pyav")
    cache.store(key, 0, frames[:4])
    cache.store(key, 4, frames[4:])
    return cache, key, frames, tmp_path / "cache" / key


@pytest.mark.parametrize("damage", ["flip", "truncate", "trailer", "header"])
def test_damaged_piece_is_detected_removed_and_recomputed(tmp_path, warnings, damage):
    cache, key, frames, entry = _filled(tmp_path)
    piece = entry / "frames_4_8.npy"
    data = bytearray(piece.read_bytes())
    if damage == "flip":  # one bit of frame 6's pixels
        data[len(data) - 4 * 4 - 20 - 2 * frames[0].nbytes + 100] ^= 0x10
    elif damage == "truncate":  # a copy cut short
        data = data[: len(data) // 2]
    elif damage == "trailer":
        data[-1] ^= 0xFF
    else:  # garbage in the .npy header's dict
        data[12:40] = b"\xff(" * 14
    piece.write_bytes(bytes(data))

    assert cache.lookup(key, 0, 4) is not None  # the other piece is whole
    assert cache.lookup(key) is None
    assert not piece.exists() and cache.stats.corrupt == 1
    assert len(warnings) == 1 and "frames_4_8.npy" in warnings[0]
    cache.store(key, 4, frames[4:])  # what the reader does after a miss
    assert np.array_equal(cache.lookup(key).frames, frames)


def test_damaged_meta_is_a_miss(tmp_path, warnings):
    cache, key, frames, entry = _filled(tmp_path)
    meta = entry / "meta.json"
    meta.write_text(meta.read_text().replace('"total_frames": 8', '"total_frames": 9'))
    assert cache.lookup(key) is None and not meta.exists()
    assert len(warnings) == 1 and "meta.json" in warnings[0]


def test_cap_evicts_least_recently_used(tmp_path):
    frames = [_frames(v, 8, 64, 64) for v in range(5)]  # 98 KB each
    cache = FrameCache(str(tmp_path / "cache"), cap_gb=3.5 * frames[0].nbytes / 1e9)
    keys = [cache.key(_video(tmp_path, f"v{v}.mp4"), PLAN) for v in range(5)]

    def put(v):
        cache.store_meta(keys[v], range(8), 8, 30.0, "pyav")
        cache.store(keys[v], 0, frames[v])
        time.sleep(0.05)  # distinct modification times

    for v in range(3):
        put(v)
    assert cache.lookup(keys[0]) is not None  # 0, the oldest written, is now the last used
    time.sleep(0.05)
    put(3)
    alive = [cache.meta(k) is not None for k in keys[:4]]
    assert alive == [True, False, True, True] and cache.stats.evicted == 1
    put(4)
    assert [cache.meta(k) is not None for k in keys] == [True, False, False, True, True]
    assert np.array_equal(cache.lookup(keys[0]).frames, frames[0])


def test_an_entry_larger_than_the_cap_is_kept_while_written(tmp_path):
    cache = FrameCache(str(tmp_path), cap_gb=1e-6)  # 1 KB
    key = cache.key(_video(tmp_path), PLAN)
    frames = _frames(3, 4)
    cache.store_meta(key, range(4), 4, 30.0, "pyav")
    cache.store(key, 0, frames[:2])
    cache.store(key, 2, frames[2:])
    assert np.array_equal(cache.lookup(key).frames, frames)


# -- unwritable folders, changed videos -------------------------------------------------------


def test_folder_that_cannot_exist_warns_once(tmp_path, warnings):
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"x")  # the cache's parent is a regular file: nothing can be created
    cache = FrameCache(str(blocker / "cache"), cap_gb=1)
    key = cache.key(_video(tmp_path), PLAN)
    for start in range(3):
        cache.store_meta(key, range(3), 3, 30.0, "pyav")
        cache.store(key, start, _frames(start, 1))
    assert cache.lookup(key) is None and cache.meta(key) is None
    assert len(warnings) == 1 and "cannot write" in warnings[0]
    assert cache.stats.stored == 0 and cache.stats.misses == 1


def test_folder_lost_during_the_run_warns_once(tmp_path, warnings):
    folder = tmp_path / "cache"
    cache = FrameCache(str(folder))
    key = cache.key(_video(tmp_path), PLAN)
    assert not warnings
    os.rmdir(folder)
    folder.write_bytes(b"x")  # e.g. the mount went away and a file took its place
    for start in range(3):
        cache.store(key, start, _frames(start, 1))
        cache.store_meta(key, range(3), 3, 30.0, "pyav")
    assert len(warnings) == 1 and "cannot write" in warnings[0]
    assert cache.lookup(key) is None and cache.stats.stored == 0


def test_changed_video_misses(tmp_path):
    cache = FrameCache(str(tmp_path / "cache"))
    video = _video(tmp_path, data=b"a" * 1000)
    key = cache.key(video, PLAN)
    cache.store_meta(key, range(2), 2, 30.0, "pyav")
    cache.store(key, 0, _frames(4, 2))
    assert cache.key(video, PLAN) == key and cache.lookup(key) is not None
    assert cache.key(video, "64 uniform") != key  # another plan, another entry

    mtime = os.stat(video).st_mtime_ns
    _video(tmp_path, data=b"b" * 1000)  # same size, other bytes
    os.utime(video, ns=(mtime + 10**9, mtime + 10**9))  # a rewrite a second later
    changed = cache.key(video, PLAN)
    assert changed != key and cache.lookup(changed) is None
