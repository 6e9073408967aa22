"""The benchmark's three outputs: JSON (all figures), a markdown table, a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path

from lmms_eval_plugin.bench.memory.cases import CASES, DESCRIPTION, STOCK

JSON_NAME, MD_NAME, PNG_NAME = "bench.json", "bench.md", "bench.png"
STYLES = {STOCK: ("k", "o", "-"), "lvu_ext_off": ("tab:blue", "s", "--"), "lvu_ext_vcwe": ("tab:orange", "^", "-."),
          "lvu_ext_default": ("tab:green", "D", "-"), "lvu_ext_default_chunked": ("tab:purple", "v", ":")}


def write_json(report: dict, out: Path) -> Path:
    path = out / JSON_NAME
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return path


def _num(v, fmt):
    return "–" if v is None else format(v, fmt)


def _yesno(v):
    return "–" if v is None else ("yes" if v else "no")


def _speedup(ratio):
    return "–" if not ratio else f"{1 / ratio:.2f}x"


def markdown(report: dict) -> str:
    m, mach, s = report["model"], report["machine"], report["settings"]
    unit = ("peak GPU memory (torch.cuda.max_memory_allocated)" if s["device"].startswith("cuda")
            else "peak RSS of the process (ru_maxrss)")
    lines = [
        f"# lvu_ext benchmark: {m['arch']} on {mach['device_name']}",
        "",
        f"- Model: {m['note']}; {m['parameters']['total'] / 1e6:,.1f}M parameters "
        f"(vision {m['parameters']['vision_tower'] / 1e6:,.1f}M, LM {m['parameters']['language_model'] / 1e6:,.1f}M), "
        f"{s['dtype']}, attention {m['attn_implementation']}, weights {m['weights']}.",
        f"- Machine: {mach['device_name']}; {mach['cpu_cores']} CPU cores, {mach['ram_gb']:.0f} GB RAM; "
        f"torch {mach['torch']}, transformers {mach['transformers']}.",
        f"- Input: {s['video']}; question with {s['max_new_tokens']} new tokens, greedy.",
        f"- Memory: {unit}, including weights and the Python process (nothing subtracted); "
        f"'baseline' = after the model is loaded; 'before LM' = peak reached when the LM prefill starts (frame decoding + "
        f"vision tower phase). GB = 1e9 bytes.",
        "- Prefill = model time to the first new token: first vision-tower call -> end of the LM prefill (vision tower, "
        "projector, pooling, LM prefill). TTFT = the same from the request (frame decoding and preprocessing included).",
        f"- Each (case, frames) ran {'in a fresh process' if s['isolation'] == 'process' else 'in one process, peak reset per case'}.",
        f"- Command: `{report['command']}`" + (
            f" (rows of `{report['merged']['command']}` kept)" if report.get("merged") else ""),
        "",
        "| Frames | Case | Visual tokens | Peak mem (GB) | Mem vs stock | Before LM (GB) | Baseline (GB) | Prefill (s) | "
        "Prefill speed-up | TTFT (s) | Same tokens as stock | Same prefill logits (bitwise) | Status |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['frames']} | {r['case']} | {_num(r['visual_tokens'], ',d')} | {_num(r['peak_mem_gb'], '.2f')} | "
            f"{_num(r['mem_ratio_vs_stock'], '.3f')} | {_num(r.get('peak_before_lm_gb'), '.2f')} | "
            f"{_num(r['baseline_mem_gb'], '.2f')} | {_num(r['prefill_s'], '.2f')} | {_speedup(r['prefill_ratio_vs_stock'])} | "
            f"{_num(r.get('ttft_s'), '.2f')} | {_yesno(r['same_output_as_stock'])} | "
            f"{_yesno(r.get('same_prefill_logits_as_stock'))} | {r['status']} |"
        )
    lines += ["", "Cases: " + "; ".join(f"`{c}` = {DESCRIPTION[c]}" for c in CASES), "", "## Goals", ""]
    for g in report["goals"]:
        lines.append(f"- **{g['status']}** — {g['goal']}: {g['detail']}")
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def write_markdown(report: dict, out: Path) -> Path:
    path = out / MD_NAME
    path.write_text(markdown(report), encoding="utf-8")
    return path


def write_plot(report: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = (("peak_mem_gb", "Peak memory (GB)"), ("prefill_s", "Prefill: vision tower + LM to 1st token (s)"))
    frames = sorted({r["frames"] for r in report["rows"]})
    for ax, (key, label) in zip(axes, panels):
        for case in CASES:
            rows = [r for r in report["rows"] if r["case"] == case]
            if not rows:
                continue
            color, marker, style = STYLES[case]
            ok = [(r["frames"], r[key]) for r in rows if r["status"] == "ok" and r[key] is not None]
            if ok:
                ax.plot(*zip(*ok), color=color, marker=marker, linestyle=style, label=case)
            for r in rows:
                if r["status"] != "ok":  # failed rows stay visible: a cross on the axis
                    ax.scatter([r["frames"]], [0], color=color, marker="x", s=60, zorder=3)
                    ax.annotate(r["status"], (r["frames"], 0), textcoords="offset points", xytext=(0, 6),
                                ha="center", fontsize=7, color=color)
        ax.set_xscale("log", base=2)
        ax.set_xticks(frames, [str(f) for f in frames])
        ax.minorticks_off()
        ax.set_xlabel("frames")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{report['model']['arch']} on {report['machine']['device_name']}", fontsize=10)
    fig.tight_layout()
    path = out / PNG_NAME
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
