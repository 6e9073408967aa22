"""decode.json / decode.md / decode.png for `lvu-ext bench --decode`."""

from __future__ import annotations

import json
from pathlib import Path


def _same(row: dict, reference: str = "decord") -> str:
    if row.get("backend") == reference:
        return "reference"
    if "frames_identical" not in row:
        return ""
    if row["frames_identical"]:
        return "identical"
    if isinstance(row["frames_differing"], str):
        return row["frames_differing"]
    diff = f", max |diff| {row['kept_max_abs_diff']}, mean {row['kept_mean_abs_diff']}" if "kept_max_abs_diff" in row else ""
    return f"{row['frames_differing']} of {row['returned']} frames differ{diff}"


def corpus_markdown(report: dict) -> str:
    """One row per file x frames, one column per reader: exact or how it is wrong, and its time."""
    m, readers = report["machine"], report["backends"]
    out = ["# Frame readers on real-world encodes (`lvu-ext bench --decode --clips corpus`)", "",
           f"Machine: {m['device_name']}, {m['cpu_cores']} cores; command `{report['command']}`; wall {report['wall_s']} s. "
           "Each cell: the reader's wall time in one fresh process and whether its frames equal FFmpeg's sequential decode "
           "(the ffmpeg binary; same frame count, indices and pixels). \u2713 = exact.", "",
           "| file | failure class | frames | " + " | ".join(readers) + " |", "|---|---|---:|" + "---|" * len(readers)]
    failure = {c["name"]: c.get("failure", "") for c in report["clips"]}
    cells: dict = {}
    for r in report["rows"]:
        if "error" in r:
            cell = "error: " + r["error"][:80].replace("|", "/")
        else:
            verdict = "\u2713" if r.get("exact") else ("indices differ; " if r.get("indices_equal") is False else "") + _same(r, report["reference"])
            cell = f"{r['seconds']:.2f} s {verdict}".replace("|diff|", "abs diff")
        cells.setdefault((r["clip"], r["frames"]), {})[r["backend"]] = cell
    for (clip, n), by in cells.items():
        out.append(f"| {clip} | {failure.get(clip, '')} | {n} | " + " | ".join(by.get(b, "") for b in readers) + " |")
    exact = {b: sum(1 for r in report["rows"] if r["backend"] == b and r.get("exact")) for b in readers}
    total = {b: sum(1 for r in report["rows"] if r["backend"] == b) for b in readers}
    out += ["", "Exact cells per reader: " + ", ".join(f"`{b}` {exact[b]}/{total[b]}" for b in readers), "",
            "| file | what it is |", "|---|---|"] + [f"| {c['name']} | {c['describe']} |" for c in report["clips"]]
    return "\n".join(out) + "\n"


def markdown(report: dict) -> str:
    if report.get("reference") == "ffmpeg":
        return corpus_markdown(report)
    m = report["machine"]
    out = ["# Frame readers on realistic clips (`lvu-ext bench --decode`)", "",
           f"Machine: {m['device_name']}, {m['cpu_cores']} cores, {m['ram_gb']:.0f} GB; command `{report['command']}`; "
           f"wall {report['wall_s']} s. One fresh process per row; peak RSS is that process's (imports included), the decode's own is its growth above the RSS before the call. CPU time is user + system over all of the process's threads: on a node whose cores are all decoding (decode workers), that, not the wall time, sets the throughput.", "",
           "| clip | file |", "|---|---|"]
    for c in report["clips"]:
        out.append(f"| {c['name']} | {c['describe']}; {c.get('profile')}, {c.get('b_frames_in_first_120')} B-frames in the first 120, "
                   f"{c.get('mbit_s')} Mbit/s |")
    out += ["", "| clip | reader | frames | time (s) | CPU time (s) | peak RSS (GB) | RSS for the decode (GB) | indices = decord | pixels vs decord |",
            "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in report["rows"]:
        if "error" in r:
            out.append(f"| {r['clip']} | {r['backend']} | {r['frames']} | – | – | – | – | – | {r['error']} |")
            continue
        same_idx = "" if r["backend"] == "decord" else {True: "yes", False: "no", None: "not reported"}.get(r.get("indices_equal"), "")
        out.append(f"| {r['clip']} | {r['backend']} | {r['frames']} | {r['seconds']:.2f} | {r['cpu_s']:.2f} | {r['peak_rss_gb']:.2f} | {r['peak_rss_gb'] - r['rss_before_gb']:.2f} | {same_idx} | {_same(r)} |")
    out += ["", "Readers: `pyav_sparse` (lvu_ext's reader of H.264/HEVC: one PyAV pass that skips the non-reference frames "
            "no sampled frame needs and seeks past GOPs without one; it declines other codecs), `decord` (lvu_ext's reader "
            "of other codecs, and the reference), `pyav` (lvu_ext's last fallback: a counting pass, then a converting pass), "
            "`pyav_threaded` (the same with FFmpeg threading), `lmms_eval` (lmms-eval's `read_video`, which samples over the "
            "container's listed frame count and reports no indices), `torchcodec` (optional: needs a system FFmpeg)."]
    return "\n".join(out) + "\n"


def write_plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    clips = [c["name"] for c in report["clips"]]
    fig, axes = plt.subplots(1, len(clips), figsize=(4.2 * len(clips), 3.8), squeeze=False)
    for ax, clip in zip(axes[0], clips):
        for backend in report["backends"]:
            pts = [(r["frames"], r["seconds"]) for r in report["rows"] if r["clip"] == clip and r["backend"] == backend and "seconds" in r]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=backend)
        ax.set_title(clip, fontsize=8)
        ax.set_xlabel("frames sampled")
        ax.set_ylabel("seconds")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(report: dict, out: Path) -> list[Path]:
    paths = [out / "decode.json", out / "decode.md"]
    paths[0].write_text(json.dumps(report, indent=1), encoding="utf-8")
    paths[1].write_text(markdown(report), encoding="utf-8")
    if report.get("reference") != "ffmpeg":  # the corpus's cells are exactness verdicts, not a curve over frame counts
        paths.append(write_plot(report, out / "decode.png"))
    return paths
