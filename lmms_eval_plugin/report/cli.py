"""`lvu-ext report OUT_DIR [OUT_DIR ...] --out report/ [--bench BENCH_JSON ...]`"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from lmms_eval_plugin.report import baseline, benchrows, collect, markdown, plots, references, table
from lmms_eval_plugin.report.benchmarks import BENCHMARKS

log = logging.getLogger("lvu_ext.report")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lvu-ext report",
        description="Tables (report.md, report.csv) and PNG plots from lmms-eval output folders "
        "(*_results.json and, for sub-scores, *_samples_<task>.jsonl written with --log_samples).",
    )
    p.add_argument("paths", nargs="+", metavar="OUT_DIR", help="lmms-eval --output_path folders (searched recursively) or results files")
    p.add_argument("--out", default="report", help="folder to write the report into (default: report/)")
    p.add_argument("--bench", action="append", default=[], metavar="BENCH_JSON", help="performance benchmark JSON; adds memory/prefill plots (repeatable)")
    p.add_argument("--no-references", action="store_true", help="leave out the published reference rows")
    p.add_argument("--references", metavar="JSON", help="reference results file to use instead of the packaged one")
    p.add_argument(
        "--baseline",
        default=None,
        metavar="SETTINGS@FRAMES",
        help=f"row the Δ columns are taken from, per checkpoint and harness version (default: {baseline.DEFAULT_BASELINE})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="lvu-ext report: %(message)s", stream=sys.stderr)
    try:
        return _run(args)
    except (collect.NoResultsError, OSError, ValueError) as exc:
        print(f"lvu-ext report: error: {exc}", file=sys.stderr)
        return 2


def _check_inputs(args):
    """(baseline spec, references) or ValueError naming every bad input in one line, before
    any results file is read."""
    problems = []
    spec = refs = None
    try:
        spec = baseline.parse_baseline(args.baseline or baseline.DEFAULT_BASELINE)
    except ValueError as exc:
        problems.append(str(exc))
    problems += [f"{p}: no such file or folder" for p in args.paths if not os.path.exists(p)]
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        problems.append(f"--out {args.out}: an existing file, not a folder")
    problems += [f"--bench {p}: no such file" for p in args.bench if not os.path.isfile(p)]
    if args.references is not None and not os.path.isfile(args.references):
        problems.append(f"--references {args.references}: no such file")
    elif not args.no_references:
        try:
            refs = references.load_references(args.references)
        except (OSError, ValueError) as exc:
            problems.append(f"--references {exc}" if args.references else str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return spec, refs or []


def _run(args) -> int:
    spec, refs = _check_inputs(args)
    skipped: list[str] = []
    found = collect.collect(args.paths, skipped)
    if not found:
        raise collect.NoResultsError(
            f"results files found under {', '.join(args.paths)}, but none for a known benchmark ({', '.join(BENCHMARKS)} or their *_lvu_* variants)"
        )
    records, superseded = collect.newest_per_setting(found)
    missing = baseline.check_frames_present(spec, {rec.frames.label for rec in records})
    if missing and args.baseline is not None:  # asked for: refused; the default: said
        raise ValueError(missing)
    if missing:
        log.warning("%s", missing)
    bench_rows = [row for path in args.bench for row in benchrows.load_bench(path)]

    def source_of(rec):
        return table.relative_source(rec.path, args.paths)

    os.makedirs(args.out, exist_ok=True)
    rows = table.build_rows(records, refs, source_of)
    baseline.assign_deltas(rows, table.headline_columns(rows), spec)
    cols = table.columns(rows)
    table.write_csv(rows, cols, os.path.join(args.out, "report.csv"))
    benches = [b for b in BENCHMARKS.values() if any(b.key == k for row in rows for k, _ in row.scores)]
    plot_paths = plots.accuracy_plots(benches, records, refs, args.out)
    memory_png = plots.memory_plot(bench_rows, refs, args.out)
    paper = references.citation(args.references) if refs else ""
    text = markdown.render(rows, records, superseded, plot_paths, bench_rows, memory_png, paper, source_of, spec.label)
    if skipped:
        text += "\n## Skipped files\n\n" + "\n".join(f"- {line}" for line in skipped) + "\n"
    with open(os.path.join(args.out, "report.md"), "w", encoding="utf-8") as fh:
        fh.write(text)
    log.info(
        "%d run rows from %d task results (%d older duplicates superseded) -> %s",
        sum(not r.is_reference for r in rows),
        len(records),
        len(superseded),
        os.path.abspath(args.out),
    )
    return 0
