"""`lvu-ext reproduce TABLE --pretrained ID [--limit N] [--processes N] [--out DIR] [--dry-run]`

Runs every runnable row of one of the paper's tables through the real lmms-eval CLI (one
output folder per row under DIR/rows/, skipped when its results are already there), then
writes DIR/reproduction.md/.csv/.png: per row the paper's score and Δ from the table's
baseline row, the measured score and Δ, their gap and a verdict (verdict.py)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lmms_eval_plugin.reproduce import commands, output, plan, runner
from lmms_eval_plugin.reproduce.tables import load_table, table_names
from lmms_eval_plugin.reproduce.verdict import compare

log = logging.getLogger("lvu_ext.reproduce")


class UsageError(ValueError):
    """An option that names something the table does not have."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lvu-ext reproduce", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("table", choices=table_names(), help="video-mme-ablation: Table 4; pooling: Table 5; main: Tables 1-3")
    p.add_argument("--pretrained", required=True, help="checkpoint: a hub id or a local folder (the lvu_ext `pretrained` model arg)")
    p.add_argument("--out", help="folder for the rows and the reproduction (default: ./reproduce_<table>); reuse it to resume")
    p.add_argument("--limit", help="lmms-eval --limit for every row (a count, or a fraction below 1): a plumbing check, never judged")
    p.add_argument("--processes", type=int, default=1, help="processes per row; above 1 each row runs under `accelerate launch --multi_gpu`")
    p.add_argument("--include-path", help="lmms-eval --include_path holding the rows' tasks (default: lvu_ext's tasks, `lvu-ext tasks-path`)")
    p.add_argument("--system-prompt", default=commands.PAPER_SYSTEM_PROMPT,
                   help="system turn of every prompt (default: the paper's harness prompt); '' keeps the checkpoint's own template")
    p.add_argument("--model-args", default="", help="more lvu_ext model args for every row, e.g. attn_implementation=flash_attention_2")
    p.add_argument("--rows", help="comma-separated row ids to run (default: every runnable row); the others stay in the output as not run")
    p.add_argument("--dry-run", action="store_true", help="print one lmms-eval command per row on stdout and exit")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not log.handlers:  # our lines only: libraries' INFO logging stays theirs
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("lvu-ext reproduce: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    if args.processes < 1:
        print("lvu-ext reproduce: error: --processes must be at least 1", file=sys.stderr)
        return 2
    try:
        return _run(args)
    except (runner.StaleRowError, UsageError) as exc:
        print(f"lvu-ext reproduce: error: {exc}", file=sys.stderr)
        return 2


def _invocation(args) -> commands.Invocation:
    from lmms_eval_plugin.paths import tasks_dir

    out = Path(args.out or f"reproduce_{args.table}").resolve()
    return commands.Invocation(pretrained=args.pretrained, out=out, include_path=str(Path(args.include_path or tasks_dir()).resolve()),
                               limit=args.limit, processes=args.processes, system_prompt=args.system_prompt, model_args=args.model_args)


def _run(args) -> int:
    table = load_table(args.table)
    inv = _invocation(args)
    rows = table.runnable
    if args.rows:
        wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
        unknown = sorted(set(wanted) - {r.id for r in rows})
        if unknown:
            raise UsageError(f"--rows {', '.join(unknown)}: not runnable rows of {table.name} "
                             f"(its rows: {', '.join(r.id for r in rows)})")
        rows = [r for r in rows if r.id in wanted]
    argvs = {row.id: commands.lmms_eval_argv(inv, row) for row in rows}
    for row in table.rows:
        if not row.runnable:
            log.info("not runnable: %s (%s): %s", row.id, row.source, row.why)
    counts: dict = {}
    needs = {row.id: plan.row_needs(row, table, inv.include_path, inv.limit, counts) for row in rows}
    # rows already in the folder, read once: the plan, the skip and the report all use it
    found = {row.id: runner.measured(row, commands.row_dir(inv, row)) for row in rows}
    done = {row_id for row_id, got in found.items() if got is not None}
    _say_plan(table, rows, needs, done, inv)
    if args.dry_run:
        for row in rows:
            print(commands.shell_line(argvs[row.id]))
        return 0
    for row in rows:  # every folder checked before anything runs
        runner.check_folder(row, commands.row_dir(inv, row), argvs[row.id])
    measured, failed = {}, {}
    todo = [row for row in rows if row.id not in done]
    for row in rows:
        folder = commands.row_dir(inv, row)
        if row.id in done:
            log.info("%s: results already in %s, not run again", row.id, folder)
            measured[row.id] = found[row.id]
            continue
        position = todo.index(row) + 1
        log.info("[%d/%d] %s: %s on %s (log: %s)", position, len(todo), row.id, row.task, args.pretrained, folder / runner.LOG_FILE)
        got, why = runner.run_row(row, folder, argvs[row.id], needs[row.id].frames_per_doc)
        if why:
            failed[row.id] = f"failed: {why}"
            log.error("%s %s", row.id, failed[row.id])
        else:
            measured[row.id] = got
            log.info("%s: %s %s %.2f on %s question(s)", row.id, row.benchmark, row.column, got.score, got.n)
        rest = [needs[r.id].frames for r in todo[position:]]
        if rest:
            log.info("time for the %d row(s) left: %s", len(rest), plan.estimate_hours(rest, _timed(table, inv), inv.processes))
    lines = compare(table, measured, failed)
    _write(table, lines, inv, args)
    return 1 if failed else 0


def _timed(table, inv):
    return plan.timed_rows(table, lambda row: commands.row_dir(inv, row))


def _say_plan(table, rows, needs, done, inv) -> None:
    pending = [row for row in rows if row.id not in done]
    docs = [needs[r.id].docs for r in pending]
    frames = [needs[r.id].frames for r in pending]
    known = all(d is not None for d in docs)
    log.info("%s: %d runnable row(s), %d already in %s, %d to run", table.name, len(rows), len(done), inv.out, len(pending))
    for row in pending:
        n = needs[row.id]
        what = (f"{n.docs} question(s) on {n.videos if n.videos is not None else 'an unknown number of'} video(s), "
                f"up to {n.frames} frames{' (a rate, capped)' if n.rate_based else ''}") if n.docs is not None else f"size unknown: {n.why_unknown}"
        log.info("  %s (%s): %s", row.id, row.task, what)
    if pending:
        total = f"{sum(docs)} question(s), up to {sum(frames)} frames" if known and all(f is not None for f in frames) else "size partly unknown"
        log.info("to run: %s; time: %s", total, plan.estimate_hours(frames, _timed(table, inv), inv.processes))


def _write(table, lines, inv, args) -> None:
    inv.out.mkdir(parents=True, exist_ok=True)
    got = [line.measured for line in lines if line.measured]
    harnesses = sorted({m.harness for m in got})
    revisions = sorted({m.revision for m in got})
    header = [f"Checkpoint `{inv.pretrained}`, revision(s) {', '.join(revisions) or 'none measured'}; lmms-eval "
              f"{', '.join(harnesses) or 'none measured'}; {inv.processes} process(es) per row"
              + (f"; `--limit {inv.limit}` (no verdicts: a subset)" if inv.limit else "") + "."]
    if len(harnesses) > 1 or len(revisions) > 1:
        header.append("**The rows mix harness versions or checkpoint revisions**: rows are judged only against a baseline scored alike.")
    png_path = inv.out / "reproduction.png"
    png = png_path.name if output.write_plot(lines, png_path) else None
    output.write_csv(lines, inv.out / "reproduction.csv")
    output.write_markdown(table, lines, header, inv.out / "reproduction.md", png)
    log.info("wrote %s (.csv%s)", inv.out / "reproduction.md", ", .png" if png else "")
