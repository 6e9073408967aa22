"""Assemble report.md from the tables, notes and plot files."""

from __future__ import annotations

import os

from lmms_eval_plugin.report import benchrows, table


def render(rows, records, superseded, plot_paths, bench_rows, memory_png, paper, sources_of) -> str:
    cols = table.columns(rows)
    out = [
        "# lvu_ext comparison report",
        "",
        (
            f"{len({r.path for r in records})} lmms-eval results files, {sum(not r.is_reference for r in rows)} run rows, "
            f"{sum(r.is_reference for r in rows)} published reference rows ([ref]). All scores are accuracy in percent: "
            "LongVideoBench's harness value (a 0-1 fraction) is multiplied by 100; MLVU and Video-MME are already percent. "
            "Headline numbers are the harness's own; sub-scores (MLVU task types, Video-MME durations, LongVideoBench "
            "duration groups) are recounted from each run's samples JSONL the way the harness's aggregation counts them."
        ),
        "",
        "## Headline",
        "",
        table.markdown_table(rows, table.headline_columns(rows)),
        "",
        "## All metrics",
        "",
        table.markdown_table(rows, cols),
        "",
    ]
    if plot_paths:
        overview = [p for p in plot_paths if p.endswith("accuracy_vs_frames.png")]
        out += ["## Accuracy against frames", ""]
        out += [f"![accuracy against frames]({os.path.basename(p)})" for p in overview] + [""]
        out += ["Per benchmark: " + ", ".join(f"[{os.path.basename(p)}]({os.path.basename(p)})" for p in plot_paths if p not in overview), ""]
    if bench_rows:
        out += ["## Memory and speed (`--bench`)", "", benchrows.markdown_table(bench_rows), ""]
        out += [f"Files: {', '.join(sorted({r.source for r in bench_rows}))}", ""]
        if memory_png:
            out += [f"![memory against frames]({os.path.basename(memory_png)})", ""]
    notes = [f"- {r.model}, {r.settings}, {r.frames.label} frames: {n}" for r in rows for n in r.notes]
    out += ["## Notes", ""]
    out += notes or ["- none"]
    out += [
        "",
        ("Several runs of the same (model, settings, frames, benchmark): the newest wins (the harness's recorded `date`, then file time)."),
    ]
    if superseded:
        out += [f"- superseded: {sources_of(r)} ({r.task}, {r.date})" for r in superseded]
    out += ["", "## Sources", "", f"- Reference rows: {paper}; the table is named in each row's Source column."]
    out.append(
        "- Run rows: model, settings and frames are read from each results file's recorded config "
        "(`config.model`, `config.model_args`, task `metadata`), not from folder names."
    )
    return "\n".join(out) + "\n"
