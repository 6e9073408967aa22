"""`lvu-ext bench --cache-sweep`: what the frame cache saves a sweep (docs/frame-cache.md).

Three rows with different method settings (as `lvu-ext reproduce` runs a table, or a
researcher compares settings), each one lmms-eval run over the same decode-bound videos
(realistic 1280x720 H.264 clips of minutes, the tiny model), side by side in one run:
- `no_cache`: every row decodes every video;
- `cold_cache`: one fresh `frame_cache` folder for the three rows: row 1 decodes and stores,
  rows 2 and 3 read;
- `cold_cache_processed`: the same with `frame_cache_stage=processed` (the folder keeps the
  processor's resized frames, as `lvu-ext reproduce` runs its rows);
- `filled_cache`: `lvu-ext check-videos --fill-cache` first (no model), then the three rows:
  none decodes;
- `filled_cache_processed`: the same fill, then the rows with `frame_cache_stage=processed`:
  row 1 reads the decoded frames and stores the resized ones, rows 2 and 3 read those.
Per row: wall time, lmms-eval's evaluate time, the frame-cache state of every request and
the answers (equal across the sweeps, or the cache changed what the model saw).
Writes cache_sweep.json and cache_sweep.md to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROWS = {  # three settings of one table: the method off, on, and on with another pooling
    "method_off": "rope_ext=none,pooling=native",
    "vcwe_progressive": "rope_ext=vcwe,pooling=progressive",
    "vcwe_uniform": "rope_ext=vcwe,pooling=uniform,pool_stride=4",
}
# sweep -> (frame_cache_stage, or None for no cache; filled by check-videos --fill-cache first)
SWEEPS = {"no_cache": (None, False), "cold_cache": ("decoded", False), "cold_cache_processed": ("processed", False),
          "filled_cache": ("decoded", True), "filled_cache_processed": ("processed", True)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lvu-ext bench --cache-sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=3, help="realistic 720p clips (default 3)")
    p.add_argument("--questions", type=int, default=1, help="questions per video (default 1)")
    p.add_argument("--frames", type=int, default=128, help="frames per video (default 128)")
    p.add_argument("--clip-seconds", type=int, default=120, help="seconds of the first clip (+10 s per further clip; default 120)")
    p.add_argument("--pretrained", default="tiny-random-onevision", help="checkpoint (default: the embedded tiny OneVision)")
    p.add_argument("--out", default="bench_cache_sweep_out")
    p.add_argument("--work-dir", default=None, help="videos, task, caches, logs (default: $LVU_EXT_CACHE/bench)")
    return p


def _run(cmd: list[str], env: dict, log: Path) -> float:
    start = time.monotonic()
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... exited {rc}; see {log}")
    return time.monotonic() - start


def _row_result(out: Path, timing: Path) -> dict:
    from lmms_eval_plugin.bench.workload.workload import _answers

    recs = [json.loads(line) for f in sorted(out.rglob("lvu_ext_requests*.jsonl")) for line in f.read_text().splitlines() if line.strip()]
    states: dict[str, int] = {}
    for r in recs:
        if r.get("status") == "ok" and not r.get("video_cache_hit"):  # one state per video decode asked, not per question
            states[r.get("frame_cache", "off")] = states.get(r.get("frame_cache", "off"), 0) + 1
    evaluate = json.loads(timing.read_text())["evaluate_s"] if timing.exists() else None
    return {"frame_cache": states, "evaluate_s": evaluate, "answers": _answers(out)}


def run(ns, argv) -> int:
    from lmms_eval_plugin.bench.machine import machine_info
    from lmms_eval_plugin.bench.workload.workload import TASK, _realistic_videos, _write_task
    from lmms_eval_plugin.bench.workload.workload_launch import TIMING_ENV
    from lmms_eval_plugin.bench.workload.workload_task import DOCS_ENV
    from lmms_eval_plugin.checkpoints.tiny_models import cache_root

    work = Path(ns.work_dir) if ns.work_dir else cache_root() / "bench"
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = work / "cache_sweep_runs"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)
    started = time.monotonic()
    videos = _realistic_videos(work, ns.videos, ns.clip_seconds)
    task_dir, docs = _write_task(work, videos, ns.questions, 8, "videomme")
    env = dict(os.environ, **{DOCS_ENV: str(docs)})
    rows = []
    for sweep, (stage, filled) in SWEEPS.items():
        cache = runs / f"{sweep}_frames"
        fill_s = None
        if filled:  # on a CPU node, before any model: every video into the cache
            fill_s = _run([sys.executable, "-m", "lmms_eval_plugin.cli", "check-videos", "--tasks", TASK, "--include_path", str(task_dir),
                           "--num-frames", str(ns.frames), "--fill-cache", str(cache), "--out", str(runs / "check")], env, runs / "fill.log")
        for i, (row, settings) in enumerate(ROWS.items()):
            model_args = f"pretrained={ns.pretrained},device=cpu,dtype=float32,num_frames={ns.frames},resume_journal=off,{settings}"
            if stage:
                model_args += f",frame_cache={cache},frame_cache_stage={stage}"
            row_out, timing = runs / f"{sweep}_{row}", runs / f"{sweep}_{row}.timing.json"
            cmd = [sys.executable, "-m", "lmms_eval_plugin.bench.workload.workload_launch", "--model", "lvu_ext", "--model_args", model_args,
                   "--tasks", TASK, "--include_path", str(task_dir), "--batch_size", "1", "--output_path", str(row_out), "--log_samples"]
            wall = _run(cmd, dict(env, **{TIMING_ENV: str(timing)}), runs / f"{sweep}_{row}.log")
            result = {"sweep": sweep, "row": row, "settings": settings, "wall_s": round(wall, 2), **_row_result(row_out, timing)}
            if i == 0 and fill_s is not None:
                result["fill_s"] = round(fill_s, 2)
            rows.append(result)
            print(f"[cache-sweep] {sweep:>12} {row:>18}: {wall:.1f} s, frame cache {result['frame_cache']}", file=sys.stderr, flush=True)
    report = {"machine": machine_info("cpu"), "command": "lvu-ext bench --cache-sweep " + " ".join(argv), "videos": [str(v) for v in videos],
              "frames": ns.frames, "questions": ns.questions, "rows": rows, "wall_s": round(time.monotonic() - started, 1)}
    for path in _write(report, out):
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _write(report: dict, out: Path) -> list[Path]:
    rows = report["rows"]
    total = {s: sum(r["wall_s"] for r in rows if r["sweep"] == s) + sum(r.get("fill_s", 0) for r in rows if r["sweep"] == s) for s in SWEEPS}
    same = all(r["answers"] == next(x["answers"] for x in rows if x["sweep"] == "no_cache" and x["row"] == r["row"]) for r in rows)
    m = report["machine"]
    lines = ["# The frame cache on a 3-row sweep (`lvu-ext bench --cache-sweep`)", "",
             f"Machine: {m['device_name']}, {m['cpu_cores']} cores; command `{report['command']}`; {len(report['videos'])} realistic 720p "
             f"H.264 clips, {report['frames']} frames, {report['questions']} question(s) each, the tiny OneVision on the CPU; wall {report['wall_s']} s.",
             "", "| sweep | row | settings | wall (s) | lmms-eval evaluate (s) | videos decoded | read from the cache |", "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        fc = r["frame_cache"]
        decoded = fc.get("off", 0) + fc.get("stored", 0) + fc.get("miss", 0)
        evaluate = f"{r['evaluate_s']:.1f}" if r["evaluate_s"] is not None else "–"
        lines.append(f"| {r['sweep']} | {r['row']} | `{r['settings']}` | {r['wall_s']:.1f} | {evaluate} | {decoded} | {fc.get('hit', 0)} |")
    lines += ["", "| sweep | whole sweep (s) | vs no_cache |", "|---|---:|---:|"]
    fills = {r["sweep"]: r["fill_s"] for r in rows if "fill_s" in r}
    lines += [f"| {s} | {total[s]:.1f}{' (incl. ' + format(fills[s], '.1f') + ' s of check-videos --fill-cache)' if s in fills else ''} | "
              f"{total['no_cache'] / total[s]:.2f}x |" for s in SWEEPS]
    lines += ["", f"Answers equal to the no-cache sweep in every row: {'yes' if same else 'NO'}."]
    paths = [out / "cache_sweep.json", out / "cache_sweep.md"]
    paths[0].write_text(json.dumps({**report, "totals_s": total, "answers_equal": same}, indent=1), encoding="utf-8")
    paths[1].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run(build_parser().parse_args(argv), argv)
