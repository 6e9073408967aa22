"""gpu_suite.json / .md / .png: the suite's parts on one page."""

from __future__ import annotations

import json
from pathlib import Path


def _f(v, fmt=".2f") -> str:
    return "–" if v is None else format(v, fmt)


def markdown(report: dict) -> str:
    m = report["machine"]
    out = [f"# lvu_ext GPU suite{' (reduced: CPU smoke run, the numbers measure nothing)' if report['reduced'] else ''}", "",
           f"Machine: {m['device_name']}" + (f", {m['gpu_memory_gb']:.0f} GB" if m.get("gpu_memory_gb") else "") +
           f"; {m['cpu_cores']} CPU cores; torch {m['torch']}, transformers {m['transformers']}. Command `{report['command']}`.", ""]
    parts = report["parts"]
    mem = (parts.get("memory") or {}).get("data")
    if mem:
        out += [f"## Memory and prefill ({mem['model']['arch']}, {mem['settings']['dtype']}, {mem['settings']['device']})", "",
                "| case | frames | status | peak memory (GB) | prefill (s) | visual tokens |", "|---|---:|---|---:|---:|---:|"]
        out += [f"| {r['case']} | {r['frames']} | {r['status']} | {_f(r.get('peak_mem_gb'))} | {_f(r.get('prefill_s'))} | "
                f"{r.get('visual_tokens') or '–'} |" for r in mem["rows"]]
        out.append("")
    work = (parts.get("workload") or {}).get("data")
    if work:
        s = work["settings"]
        out += [f"## Workload ({s['videos']} videos x {s['questions_per_video']} questions, {s['frames']} frames, {s['video']}, "
                f"models on {s['device']})", "", "| case | status | questions / hour | evaluate (s) |", "|---|---|---:|---:|"]
        out += [f"| {r['case']} | {r['status']} | {_f(r.get('questions_per_hour'), ',.0f')} | {_f(r.get('evaluate_s'), '.1f')} |"
                for r in work["rows"]]
        out += [""] + [f"- {g['goal']}: **{g['status']}** ({g.get('detail', '')})" for g in work.get("goals", [])] + [""]
    proc = (parts.get("processor") or {}).get("data")
    if proc:
        out += ["## Video processor: CPU against CUDA", "",
                f"{proc['frames']} frames of {proc['clip']}: CPU {_f(proc['cpu_s'])} s, CUDA {_f(proc.get('cuda_s'))} s; "
                f"outputs equal: {proc.get('equal')}" + (f" (max |diff| {proc['max_abs_diff']:.3g})" if "max_abs_diff" in proc else "")
                + (f"; {proc['note']}" if proc.get("note") else ""), ""]
    out.append("Part exit codes: " + ", ".join(f"{k} {v['exit_code']} ({v['wall_s']} s)" for k, v in parts.items()) + ".")
    return "\n".join(out) + "\n"


def write_plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    mem = (report["parts"].get("memory") or {}).get("data")
    if mem:
        rows = [r for r in mem["rows"] if r.get("peak_mem_gb") is not None]
        labels = [f"{r['case']}\n@{r['frames']}" for r in rows]
        axes[0].bar(range(len(rows)), [r["peak_mem_gb"] for r in rows], color="#1f77b4")
        axes[0].set_xticks(range(len(rows)), labels, fontsize=6, rotation=30, ha="right")
    axes[0].set_ylabel("peak memory (GB)")
    work = (report["parts"].get("workload") or {}).get("data")
    if work:
        rows = [r for r in work["rows"] if r.get("questions_per_hour")]
        axes[1].bar(range(len(rows)), [r["questions_per_hour"] for r in rows], color="#2ca02c")
        axes[1].set_xticks(range(len(rows)), [r["case"] for r in rows], fontsize=7)
    axes[1].set_ylabel("questions per hour")
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(report: dict, out: Path) -> list[Path]:
    paths = [out / "gpu_suite.json", out / "gpu_suite.md"]
    paths[0].write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    paths[1].write_text(markdown(report), encoding="utf-8")
    paths.append(write_plot(report, out / "gpu_suite.png"))
    return paths
