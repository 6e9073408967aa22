"""Goals and the three outputs (JSON, markdown, PNG) of `lvu-ext bench --workload`."""

from __future__ import annotations

import json
from pathlib import Path

JSON_NAME, MD_NAME, PNG_NAME = "workload.json", "workload.md", "workload.png"


def _row(report: dict, case: str) -> dict | None:
    row = next((r for r in report["rows"] if r["case"] == case), None)
    return row if row and row["status"] == "ok" and row.get("questions_per_hour") else None


def _ratio_goal(report, goal, case, peer, at_least, strict=False) -> dict:
    a, b = _row(report, case), _row(report, peer)
    if not (a and b):
        return {"goal": goal, "status": "not measured", "detail": f"needs both {case} and {peer}"}
    ratio = a["questions_per_hour"] / b["questions_per_hour"]
    ok = ratio > at_least if strict else ratio >= at_least
    return {"goal": goal, "status": "met" if ok else "not met", "ratio": ratio,
            "detail": f"{a['questions_per_hour']:,.0f} / {b['questions_per_hour']:,.0f} questions per hour = {ratio:.2f}x"}


def evaluate_goals(report: dict) -> list[dict]:
    ran = {r["case"] for r in report["rows"]}
    pairs = [("off_reuse_on", "off_reuse_off"), ("default_reuse_on", "default_reuse_off")]
    goals = []
    if ran & {"off_reuse_off", "off_reuse_on", "default_reuse_off", "default_reuse_on"}:
        goals += [
            _ratio_goal(report, "defaults reuse-on >= 2.5x the questions/hour of defaults reuse-off", "default_reuse_on",
                        "default_reuse_off", 2.5),
            _ratio_goal(report, "defaults reuse-on >= 3x the questions/hour of lmms-eval's llava_hf", "default_reuse_on", "llava_hf", 3.0),
            _ratio_goal(report, "method off with reuse beats llava_hf (same visual tokens)", "off_reuse_on", "llava_hf", 1.0, strict=True),
        ]
    else:
        pairs = []
    if ran & {"shard_video", "shard_harness"}:
        goals.append(_ratio_goal(report, f"shard=video >= 2x the questions/hour of shard=harness at "
                                 f"{report['settings'].get('processes', 1)} processes", "shard_video", "shard_harness", 2.0))
        pairs.append(("shard_video", "shard_harness"))
    if ran & {"workers_off", "workers_default"}:
        goals += [
            _ratio_goal(report, "default decode_workers >= 1.6x the questions/hour of decode_workers=0,prefetch=0",
                        "workers_default", "workers_off", 1.6),
            _ratio_goal(report, "default decode_workers >= 6x the questions/hour of lmms-eval's llava_hf", "workers_default", "llava_hf", 6.0),
        ]
        pairs.append(("workers_default", "workers_off"))
    for case, peer in pairs:
        row = next((r for r in report["rows"] if r["case"] == case), None)
        same = row.get(f"same_answers_as_{peer}") if row else None
        goals.append({"goal": f"{case} answers == {peer} answers (reuse is exact)",
                      "status": "not measured" if same is None else ("met" if same else "not met"),
                      "detail": "not run" if same is None else f"{row['questions']} answers, {'all equal' if same else 'some differ'}"})
    return goals


def _num(v, fmt):
    return "–" if v is None else format(v, fmt)


def _hits(reuse: dict, key: str) -> str:
    return f"{reuse[key]}/{reuse['requests']}" if reuse else "–"


def markdown(report: dict) -> str:
    m, mach, s = report["model"], report["machine"], report["settings"]
    n = s["videos"] * s["questions_per_video"]
    lines = [
        f"# lvu_ext workload benchmark: {s['videos']} videos x {s['questions_per_video']} questions, {s['frames']} frames, "
        f"{m['arch']} on {mach['device_name']}",
        "",
        f"- Model: {m['note']}; {m['parameters']['total'] / 1e6:,.1f}M parameters, {s['dtype']}, every case the same checkpoint "
        f"(save_pretrained -> from_pretrained).",
        f"- Machine: {mach['device_name']}; {mach['cpu_cores']} CPU cores, {mach['ram_gb']:.0f} GB RAM; torch {mach['torch']}, "
        f"transformers {mach['transformers']}. " + (f"Models on the GPU ({mach.get('device_name')})." if s.get("device") == "cuda"
                                                     else "Models on the CPU: GPU not measured in this run."),
        f"- Work: {n} questions ({s['video']}), {s['order']}; {s['max_new_tokens']} new tokens, greedy; one fresh lmms-eval "
        f"run per case, through the lmms-eval CLI on a local task"
        + (f", {s['processes']} CPU processes (accelerate launch)." if s.get("processes", 1) > 1 else "."),
        "- Time = lmms-eval's `evaluate` (building each request, every model call incl. frame decoding, scoring; model "
        "loading excluded); q/h = 3600 / (time per question). Wall = the whole process. Peak = peak RSS of the lmms-eval "
        "process (ru_maxrss; the largest process under accelerate launch). GB = 1e9 bytes.",
        f"- Command: `{report['command']}`",
        "",
        "| Case | s / question | Questions / hour | vs llava_hf | Evaluate (s) | Wall (s) | Peak mem (GB) | Visual tokens | "
        "Video cache hits | Prefix cache hits | Same answers as | Status |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    peer = _row(report, "llava_hf")
    for r in report["rows"]:
        reuse = r.get("reuse") or {}
        vs = f"{r['questions_per_hour'] / peer['questions_per_hour']:.2f}x" if peer and r.get("questions_per_hour") else "–"
        same = "; ".join(f"{k.removeprefix('same_answers_as_')}: {'yes' if v else 'no'}" for k, v in r.items()
                         if k.startswith("same_answers_as_")) or "–"
        tokens = ", ".join(str(t) for t in reuse.get("visual_tokens", [])) or "–"
        lines.append(
            f"| {r['case']} | {_num(r.get('s_per_question'), '.2f')} | {_num(r.get('questions_per_hour'), ',.0f')} | {vs} | "
            f"{_num(r.get('evaluate_s'), '.1f')} | {r['wall_s']:.1f} | {_num(r['peak_mem_gb'], '.2f')} | {tokens} | "
            f"{_hits(reuse, 'video_cache_hits')} | {_hits(reuse, 'prefix_cache_hits')} | {same} | {r['status']} |"
        )
    lines += ["", "Cases: " + "; ".join(f"`{c}` = {d}" for c, d in report["cases"].items()), "", "## Goals", ""]
    lines += [f"- **{g['status']}** — {g['goal']}: {g['detail']}" for g in report["goals"]]
    lines += ["", "Answers that must be equal: each reuse-on case and its reuse-off case (reuse is exact), and shard=video "
              "and shard=harness (the same requests, answered on other processes). llava_hf runs with "
              "`chat_template=` (ChatML for its plain-string message; the checkpoint's template reads list content only), "
              "which renders exactly lvu_ext's prompt, and it samples the same frames, so with the method off its answers "
              "are expected to equal lvu_ext's too (reported, not required).",
              "", "CPU load average (1 min) when each case started: " + ", ".join(
                  f"{r['case']} {r['load_avg_at_start']:.2f}" for r in report["rows"] if r.get("load_avg_at_start") is not None)]
    return "\n".join(lines) + "\n"


def write_plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["rows"] if r["status"] == "ok" and r.get("questions_per_hour")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    names = [r["case"] for r in rows]
    colors = ["0.4" if c == "llava_hf" else ("tab:green" if c.startswith("default") else "tab:blue") for c in names]
    for ax, key, label in ((axes[0], "questions_per_hour", "questions per hour (higher is better)"),
                           (axes[1], "peak_mem_gb", "peak memory, GB (lower is better)")):
        bars = ax.bar(range(len(rows)), [r[key] for r in rows], color=colors)
        for bar, r in zip(bars, rows):
            ax.annotate(f"{r[key]:,.0f}" if key == "questions_per_hour" else f"{r[key]:.2f}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(rows)), names, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    s = report["settings"]
    fig.suptitle(f"{s['videos']} videos x {s['questions_per_video']} questions, {s['frames']} frames, "
                 f"{report['model']['arch']} on {report['machine']['device_name']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(report: dict, out: Path) -> list[Path]:
    paths = [out / JSON_NAME, out / MD_NAME]
    paths[0].write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(report), encoding="utf-8")
    return paths + [write_plot(report, out / PNG_NAME)]
