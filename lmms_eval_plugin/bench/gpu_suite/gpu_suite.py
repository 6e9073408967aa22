"""`lvu-ext bench --gpu-suite --out DIR [--reduced]`: the GPU measurements in one prepared
command, sized for one H200 in at most 10 minutes. Writes gpu_suite.json / .md / .png to DIR
(each part's own outputs in DIR/<part>/):

  memory     `lvu-ext bench`, LLaVA-OneVision-7B architecture with random bf16 weights built
             on the GPU: stock transformers, lvu_ext defaults, defaults + prefill_chunk, at
             256 and 1024 frames; peak torch.cuda.max_memory_allocated and prefill time.
  workload   `lvu-ext bench --workload` with the models on the GPU and realistic 720p clips:
             lmms-eval's llava_hf, lvu_ext with decode_workers=0,prefetch=0, lvu_ext defaults
             (decode workers); questions per hour.
  processor  the checkpoint's video processor on the CPU against `device="cuda"` on the same
             256 frames: time, and whether the output stays equal.

`--reduced` is the same code on the CPU in a few minutes (tiny architecture, a few frames,
seconds-long clips): CI runs it so the suite cannot rot. Its numbers measure nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

PARTS = ("memory", "workload", "processor")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lvu-ext bench --gpu-suite", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for gpu_suite.json / .md / .png and each part's outputs")
    p.add_argument("--reduced", action="store_true", help="CPU smoke run: tiny architecture, few frames, short clips")
    p.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    p.add_argument("--work-dir", default=None, help="checkpoints and clips (default: $LVU_EXT_CACHE/bench)")
    return p


def _memory_argv(ns, out: Path) -> list[str]:
    cases = "stock,lvu_ext_default,lvu_ext_default_chunked"
    if ns.reduced:
        argv = ["--arch", "tiny", "--device", "cpu", "--frames", "4,8", "--isolation", "inline", "--clip-frames", "16"]
    else:
        argv = ["--arch", "7b", "--device", "cuda", "--frames", "256,1024", "--case-timeout-s", "240"]
    return argv + ["--cases", cases, "--max-new-tokens", "4", "--out", str(out)] + (["--work-dir", ns.work_dir] if ns.work_dir else [])


def _workload_argv(ns, out: Path) -> list[str]:
    if ns.reduced:
        argv = ["--device", "cpu", "--videos", "2", "--questions", "2", "--frames", "8", "--clip-seconds", "6"]
    else:
        argv = ["--device", "cuda", "--videos", "4", "--questions", "4", "--frames", "256", "--clip-seconds", "180"]
    return argv + ["--arch", "tiny", "--clips", "realistic", "--layout", "videomme", "--cases", "llava_hf,workers_off,workers_default",
                   "--case-timeout-s", "300", "--out", str(out)] + (["--work-dir", ns.work_dir] if ns.work_dir else [])


def _processor_part(ns, out: Path) -> dict:
    """The video processor on the CPU and on CUDA, same frames: seconds and equality."""
    import torch
    from transformers import LlavaOnevisionVideoProcessor

    from lmms_eval_plugin.bench.realistic_clip import ClipSpec, ensure_realistic_clip
    from lmms_eval_plugin.checkpoints.tiny_models import cache_root
    from lmms_eval_plugin.engine.video import FramePlan, load_video

    work = Path(ns.work_dir) if ns.work_dir else cache_root() / "bench"
    seconds, frames = (6, 8) if ns.reduced else (120, 256)
    clip = ensure_realistic_clip(work / "realistic_clips", ClipSpec(f"processor_{seconds}s_720p", 1280, 720, seconds))
    video = load_video(str(clip), FramePlan(frames))
    processor = LlavaOnevisionVideoProcessor()  # the published checkpoint's video processor settings
    row = {"frames": len(video.indices), "clip": clip.name}

    def run(device: str):
        started = time.perf_counter()
        pixels = processor(videos=[video.frames], return_tensors="pt", do_sample_frames=False, device=device)["pixel_values_videos"]
        if device == "cuda":
            torch.cuda.synchronize()
        return pixels.cpu(), time.perf_counter() - started

    cpu_pixels, row["cpu_s"] = run("cpu")
    if torch.cuda.is_available():
        run("cuda")  # warm-up: kernels and allocator
        gpu_pixels, row["cuda_s"] = run("cuda")
        row["max_abs_diff"] = float((gpu_pixels - cpu_pixels).abs().max())
        row["equal"] = bool(torch.equal(gpu_pixels, cpu_pixels))
    else:
        row["cuda_s"], row["equal"], row["note"] = None, None, "no CUDA device: not measured"
    (out / "processor.json").write_text(json.dumps(row, indent=1), encoding="utf-8")
    return row


def run(ns, argv) -> int:
    from lmms_eval_plugin.bench.gpu_suite.gpu_suite_output import write_outputs
    from lmms_eval_plugin.bench.machine import machine_info
    from lmms_eval_plugin.bench.memory.memory import main as bench_main
    from lmms_eval_plugin.bench.workload.workload import main as workload_main

    parts = [p.strip() for p in ns.parts.split(",") if p.strip()]
    if not parts or set(parts) - set(PARTS):
        print(f"--parts from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    report = {"machine": machine_info("cuda" if torch.cuda.is_available() and not ns.reduced else "cpu"), "reduced": ns.reduced,
              "command": "lvu-ext bench --gpu-suite " + " ".join(argv), "parts": {}}
    status = 0
    for part in parts:
        started = time.monotonic()
        folder = out / part
        folder.mkdir(exist_ok=True)
        print(f"[gpu-suite] {part} -> {folder}", file=sys.stderr, flush=True)
        if part == "memory":
            rc = bench_main(_memory_argv(ns, folder))
            data = json.loads((folder / "bench.json").read_text()) if (folder / "bench.json").exists() else None
        elif part == "workload":
            rc = workload_main(_workload_argv(ns, folder))
            data = json.loads((folder / "workload.json").read_text()) if (folder / "workload.json").exists() else None
        else:
            data, rc = _processor_part(ns, folder), 0
        status = status or rc
        report["parts"][part] = {"exit_code": rc, "wall_s": round(time.monotonic() - started, 1), "data": data}
    for path in write_outputs(report, out):
        print(f"wrote {path}", file=sys.stderr)
    return status


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run(build_parser().parse_args(argv), argv)
