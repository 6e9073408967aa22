"""One decoder measurement in a fresh process (`lvu-ext bench --decode` runs one per
clip x backend x frame count): time to sample the frames, the process's peak RSS, the
indices, a hash per frame, and a few frames kept for a pixel difference.

    python -m lmms_eval_plugin.bench.decode.decode_case BACKEND PATH FRAMES OUT_JSON   (FRAMES: 32, or fps1)
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

KEPT = 8  # frames kept (evenly spaced) for the pixel difference against decord


def measure(backend: str, path: str, frames: int | str, out: Path) -> dict:
    from lmms_eval_plugin.bench.decode.decoders import BACKENDS

    usage = resource.getrusage(resource.RUSAGE_SELF)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    indices, pixels = BACKENDS[backend](path, frames)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread's CPU time: what a busy node pays
    peak, cpu_s = usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime - cpu_before  # Linux: KiB
    keep = np.linspace(0, len(pixels) - 1, min(KEPT, len(pixels)), dtype=int)
    np.save(out.with_suffix(".npy"), pixels[keep])
    return {"backend": backend, "frames": frames, "seconds": round(seconds, 3), "cpu_s": round(cpu_s, 3), "peak_rss_gb": round(peak / 1e9, 3),
            "rss_before_gb": round(before * 1024 / 1e9, 3), "returned": int(len(pixels)), "shape": list(pixels.shape[1:]),
            "indices": indices, "hashes": [hashlib.sha1(f.tobytes()).hexdigest()[:16] for f in pixels], "kept": keep.tolist()}


def main(argv=None) -> int:
    backend, path, frames, out = (argv or sys.argv[1:])[:4]
    out = Path(out)
    frames = int(frames) if frames.isdigit() else frames  # a count, or a rate plan such as fps1
    try:
        row = measure(backend, path, frames, out)
    except Exception as exc:  # a reader that cannot read this file: a row saying so, not a lost bench
        row = {"backend": backend, "frames": frames, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    out.write_text(json.dumps(row), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
