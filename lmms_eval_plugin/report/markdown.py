"""Assemble report.md from the tables, notes and plot files."""

from __future__ import annotations

import os

from lmms_eval_plugin.report import benchrows, table


def harness_note(rows) -> list[str]:
    """A warning when the table holds scores of more than one lmms-eval version."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.harness] = counts.get(row.harness, 0) + 1
    if len(counts) < 2:
        return []
    listed = ", ".join(f"{harness} ({n} row{'s' if n > 1 else ''})" for harness, n in sorted(counts.items()))
    return [
        (
            f"**This table mixes harness versions: {listed}.** lmms-eval rewrites answer extraction and aggregation "
            "between versions (e.g. Video-MME's extraction, MLVU's M-Avg), so absolute scores from different versions, "
            "or of unknown version, are not comparable; compare the Δ columns, which are taken within one version."
        ),
        "",
    ]


def mlvu_test_note(rows) -> list[str]:
    if not any(key == "mlvu_test" for row in rows for key, _ in row.scores):
        return []
    return [
        (
            "**MLVU-test rows.** Its questions have up to six options (A-F), but the harness's answer extraction reads only "
            "A-D, so every question whose answer is E or F counts as wrong whatever the model says. The M-Avg is therefore a "
            "lower bound, not comparable with MLVU-test numbers scored elsewhere (e.g. the official leaderboard). Two runs "
            "scored by the same harness version share that handicap, so their difference still says which setting answers "
            "the A-D questions better; it says nothing about the E/F questions. All of this holds only if the test data "
            "carried the ground truth: the public MLVU_Test split is reported to withhold it, and without it the row "
            "measures nothing."
        ),
        "",
    ]


def render(rows, records, superseded, plot_paths, bench_rows, memory_png, paper, sources_of, baseline_label: str = "") -> str:
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
        (
            "Harness: the lmms-eval version that scored a row (from the run's `lvu_ext_run.json`; otherwise the results "
            "JSON's own `lmms_eval_version`, which is the git branch@commit of the folder lmms-eval ran in, shown as "
            "`git:...`). Revision: the checkpoint commit (unknown for a local folder that is neither a hub snapshot nor a "
            f"git clone). Δ: the difference from the baseline row `{baseline_label}` of the same checkpoint, revision and "
            "harness version (`base` marks that row); blank where there is none (see Notes)."
        ),
        "",
        *harness_note(rows),
        *mlvu_test_note(rows),
        "## Headline",
        "",
        table.markdown_table(rows, table.headline_columns(rows), with_delta=True),
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
    out += ["", "## Sources", "", f"- Reference rows: {paper}, unless a row's Source column names another document; the table is named in each row's Source column."]
    out.append(
        "- Run rows: model, settings and frames are read from each results file's recorded config "
        "(`config.model`, `config.model_args`, task `metadata`), not from folder names."
    )
    return "\n".join(out) + "\n"
