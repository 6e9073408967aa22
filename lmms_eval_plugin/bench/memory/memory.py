"""`lvu-ext bench` (the default mode): stock transformers vs lvu_ext, side by side, memory and prefill time
against frame count. Writes bench.json, bench.md and bench.png to --out.

CPU (no CUDA): a mid-size random model of the OneVision architecture, one fresh process
per (case, frames), peak RSS. GPU: the LLaVA-OneVision-7B architecture with random bf16
weights built on the GPU, torch.cuda.max_memory_allocated. GPU figures exist only after
a run on a GPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from lmms_eval_plugin.bench import archs
from lmms_eval_plugin.bench.machine import GB, machine_info
from lmms_eval_plugin.bench.memory.cases import CASES

DEFAULT_FRAMES = "32,64,128,256,512,1024"
CLIP_FRAMES = 1024
# `--shrink`: the 7B code path (config-only dir, weights built on the device, inline
# runs) with toy widths, so it can be exercised on a CPU.
SHRINK = dict(vision_hidden_size=32, vision_intermediate_size=64, vision_num_hidden_layers=1, vision_num_attention_heads=2,
              text_hidden_size=64, text_intermediate_size=128, text_num_hidden_layers=1, text_num_attention_heads=4,
              text_num_key_value_heads=2)


def _int_list(text: str) -> list[int]:
    values = sorted({int(v) for v in text.split(",") if v.strip()})
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("expected positive integers, e.g. 32,64,128")
    return values


def _case_list(text: str) -> list[str]:
    cases = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in cases if c not in CASES]
    if bad or not cases:
        raise argparse.ArgumentTypeError(f"unknown case(s) {bad}; choose from {', '.join(CASES)}")
    return [c for c in CASES if c in cases]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lvu-ext bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=_int_list, default=_int_list(DEFAULT_FRAMES), help=f"frame counts (default {DEFAULT_FRAMES})")
    p.add_argument("--cases", type=_case_list, default=list(CASES), help=f"subset of {','.join(CASES)} (default: all)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: cuda when available")
    p.add_argument("--arch", choices=("auto", *archs.ARCH_NAMES), default="auto", help="auto: 7b on cuda, cpu-mid on cpu")
    p.add_argument("--shrink", action="store_true", help="toy widths of --arch (code-path check, e.g. --arch 7b on a CPU)")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                   help="auto: bfloat16 on cuda or for 7b, else float32")
    p.add_argument("--out", default="bench_out", help="folder for bench.json / bench.md / bench.png")
    p.add_argument("--work-dir", default=None, help="checkpoints, clip and logs (default: $LVU_EXT_CACHE/bench)")
    p.add_argument("--max-new-tokens", type=int, default=8)
    p.add_argument("--clip-frames", type=int, default=CLIP_FRAMES,
                   help=f"length of the synthetic 640x360 input clip (default {CLIP_FRAMES}; at least the largest --frames)")
    p.add_argument("--isolation", choices=("auto", "process", "inline"), default="auto",
                   help="process: a fresh process per case (CPU default); inline: one process (GPU default)")
    p.add_argument("--mem-limit-gb", type=float, default=None,
                   help="CPU process mode: kill a case above this RSS and report OOM (default: 90%% of available RAM)")
    p.add_argument("--case-timeout-s", type=float, default=3600)
    p.add_argument("--no-warmup", action="store_true", help="skip the 2-frame warm-up before each measured case")
    p.add_argument("--merge", default=None, metavar="BENCH_JSON",
                   help="keep the rows of an earlier bench.json of the same model and device (rows run now replace them)")
    p.add_argument("--dry-run", action="store_true", help="only build configs, print parameter counts, build a shrunk copy")
    return p


def _resolve(ns):
    import torch

    device = ns.device if ns.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    arch_name = ns.arch if ns.arch != "auto" else ("7b" if device == "cuda" else "cpu-mid")
    # The 7B architecture is a bf16 model wherever it runs; the small CPU models use float32.
    dtype = ns.dtype if ns.dtype != "auto" else ("bfloat16" if device == "cuda" or arch_name == "7b" else "float32")
    return device, arch_name, dtype


def _arch(arch_name: str, shrink: bool):
    if arch_name == archs.TINY:
        return None
    arch = archs.ARCHS[arch_name]
    return archs.override(arch, **SHRINK) if shrink else arch


def dry_run(arch_name: str, arch, dtype: str) -> int:
    import torch

    from lmms_eval_plugin.bench.memory.run_case import DTYPES

    if arch is None:
        print("tiny: the embedded tiny-random-onevision checkpoint (see lmms_eval_plugin/checkpoints/tiny_models.py)")
        return 0
    config, _ = archs.build_config_and_processor(arch)
    counts = archs.parameter_counts(config)
    print(f"{arch_name}: {arch.note}")
    for part, n in counts.items():
        print(f"  {part:>15}: {n:>14,d} parameters")
    print(f"  weights in {dtype}: {counts['total'] * torch.tensor([], dtype=DTYPES[dtype]).element_size() / GB:.2f} GB")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # the GPU construction path, on the CPU, with toy widths
        small = archs.save_config_only(archs.override(arch, **SHRINK), Path(tmp))
        model = archs.build_on_device(small, "cpu", DTYPES[dtype])
        n = sum(p.numel() for p in model.parameters())
        print(f"  construction path checked on cpu with toy widths: {n:,d} parameters, dtype {next(model.parameters()).dtype}")
    return 0


def _prepare_model(arch_name: str, arch, work: Path, shrink: bool) -> tuple[Path, bool]:
    """(model dir, build weights on the device?). Small archs are saved with weights; the
    7B architecture is saved as config + processor and built on the device."""
    if arch is None:
        return archs.save_checkpoint(archs.TINY, work / "tiny"), False
    target = work / archs.arch_tag(arch_name + ("-shrunk" if shrink else ""), arch)
    if arch_name == "7b":
        if not (target / "config.json").exists():
            archs.save_config_only(arch, target)
        return target, True
    return archs.save_checkpoint(arch_name, target), False


def _load_merge(ns, arch_name: str, device: str, video: str):
    """(rows of the --merge file, its provenance), ([], None) without --merge, (None, None)
    when the file measured another model, device or clip."""
    if not ns.merge:
        return [], None
    old = json.loads(Path(ns.merge).read_text(encoding="utf-8"))
    label = arch_name + ("-shrunk" if ns.shrink else "")
    mine = (label, device, video)
    theirs = (old["model"]["arch"], old["settings"]["device"], old["settings"].get("video"))
    if mine != theirs:
        print(f"--merge: {ns.merge} measured {theirs}, this run measures {mine}", file=sys.stderr)
        return None, None
    return old["rows"], {"from": ns.merge, "command": old.get("command")}


def _log_row(r: dict) -> None:
    mem = "–" if r.get("peak_mem_gb") is None else f"{r['peak_mem_gb']:.2f} GB"
    pre = "–" if r.get("prefill_s") is None else f"{r['prefill_s']:.2f} s"
    extra = f" ({r['error'][:200]})" if r.get("error") else ""
    print(f"[bench] {r['case']:>16} @ {r['frames']:>4} frames: {r['status']}, peak {mem}, prefill {pre}, "
          f"visual tokens {r.get('visual_tokens')}{extra}", file=sys.stderr, flush=True)


def run(ns, argv) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    device, arch_name, dtype = _resolve(ns)
    arch = _arch(arch_name, ns.shrink)
    if ns.dry_run:
        return dry_run(arch_name, arch, dtype)

    from lmms_eval_plugin.bench.clip import ensure_clip
    from lmms_eval_plugin.bench.memory import output, results
    from lmms_eval_plugin.bench.memory.run_case import DTYPES, CaseSpec, run_case
    from lmms_eval_plugin.bench.memory.runner import mem_available_gb, run_in_subprocess
    from lmms_eval_plugin.checkpoints.tiny_models import cache_root

    work = Path(ns.work_dir) if ns.work_dir else cache_root() / "bench"
    work.mkdir(parents=True, exist_ok=True)
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    model_dir, build = _prepare_model(arch_name, arch, work, ns.shrink)
    # One clip for every frame count up to --clip-frames, so runs merged with --merge saw the same video.
    n_clip = max(max(ns.frames), ns.clip_frames)
    clip = ensure_clip(work / f"clip_{n_clip}f_640x360.mp4", n_clip)
    report_video = f"synthetic {n_clip}-frame 640x360 clip ({clip.name})"
    previous, merged = _load_merge(ns, arch_name, device, report_video)
    if previous is None:
        return 2
    isolation = ns.isolation if ns.isolation != "auto" else ("inline" if device == "cuda" else "process")
    limit = ns.mem_limit_gb if ns.mem_limit_gb is not None else (0.9 * (mem_available_gb() or 0) or None)
    prebuilt = None
    if isolation == "inline" and build:
        prebuilt = archs.build_on_device(model_dir, device, DTYPES[dtype])

    raw, failed = [], {}
    start = time.monotonic()
    for frames in ns.frames:
        for case in ns.cases:
            if case in failed:  # a larger frame count cannot do better than one that already failed
                r = {"case": case, "frames": frames, "status": "skipped", "error": f"not run: {failed[case]}"}
            else:
                spec = CaseSpec(case=case, frames=frames, model_dir=str(model_dir), video=str(clip), device=device,
                                dtype=dtype, max_new_tokens=ns.max_new_tokens, warmup=not ns.no_warmup,
                                fresh_process=isolation == "process", build=build)
                if isolation == "process":
                    r = run_in_subprocess(spec, work / "logs", limit if device == "cpu" else None, ns.case_timeout_s)
                else:
                    r = run_case(spec, prebuilt=prebuilt)
                if r["status"] in ("OOM", "timeout"):
                    failed[case] = f"{r['status']} at {frames} frames"
            _log_row(r)
            raw.append(r)

    done = {(r["case"], r["frames"]) for r in raw}
    rows = results.build_rows([r for r in previous if (r["case"], r["frames"]) not in done] + raw)
    if arch is None:
        from transformers import AutoConfig

        config, note = AutoConfig.from_pretrained(model_dir), "embedded tiny-random-onevision (pipeline check only)"
    else:
        config, note = archs.build_config_and_processor(arch)[0], arch.note + (" [shrunk: toy widths]" if ns.shrink else "")
    report = {
        "machine": machine_info(device),
        "model": {"arch": arch_name + ("-shrunk" if ns.shrink else ""), "note": note,
                  "parameters": archs.parameter_counts(config), "attn_implementation": "sdpa",
                  "weights": "random, built on the device" if build else "random, save_pretrained -> from_pretrained",
                  "vision": {k: getattr(config.vision_config, k) for k in ("hidden_size", "intermediate_size",
                             "num_hidden_layers", "num_attention_heads", "image_size", "patch_size")},
                  "text": {k: getattr(config.text_config, k) for k in ("hidden_size", "intermediate_size",
                           "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size")}},
        "settings": {"device": device, "dtype": dtype, "frames": sorted({r["frames"] for r in rows}),
                     "cases": [c for c in CASES if any(r["case"] == c for r in rows)], "isolation": isolation,
                     "max_new_tokens": ns.max_new_tokens, "video": report_video,
                     "mem_limit_gb": limit if (isolation == "process" and device == "cpu") else None,
                     "wall_s": round(time.monotonic() - start, 1)},
        "command": "lvu-ext bench " + " ".join(argv),
        "merged": merged,
        "rows": rows,
        "goals": results.evaluate_goals(rows, device, arch_name, ns.shrink, isolation),
        "notes": _notes(device, rows),
    }
    paths = [output.write_json(report, out), output.write_markdown(report, out), output.write_plot(report, out)]
    print(output.markdown(report))
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 1 if any(r["status"] == "error" for r in rows) else 0


def _notes(device: str, rows: list[dict]) -> list[str]:
    notes = []
    no_stock = sorted({r["frames"] for r in rows} - {r["frames"] for r in rows if r["case"] == "stock" and r["status"] == "ok"})
    if no_stock:
        notes.append(f"No stock figures at {', '.join(map(str, no_stock))} frames (not run or failed): no ratios there.")
    if device == "cuda":
        return notes + ["GPU figures: random weights with the real architecture; memory and speed do not depend on weight values."]
    return notes + [
        "CPU run: a mid-size random model of the OneVision architecture (activations dominate its weights, as for the "
        "7B model on a GPU at hundreds of frames). GPU figures for the 7B model come only from a GPU run "
        "(`lvu-ext bench` on a CUDA machine); the GPU goals are 'not measured' here.",
        "Timings on a shared CPU are indicative; memory figures are the point of the CPU run.",
    ]


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run(build_parser().parse_args(argv), argv)
