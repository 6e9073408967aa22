"""`lvu-ext reproduce TABLE --pretrained ID [--limit N] [--processes N] [--out DIR] [--dry-run]`

Runs every runnable row of one of the paper's tables through the real lmms-eval CLI (one
output folder per row under DIR/rows/, skipped when its results are already there), then
writes DIR/reproduction.md/.csv/.png: per row the paper's score and Δ from the table's
baseline row, the measured score and Δ, their gap and a verdict (verdict.py)."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from lmms_eval_plugin.reproduce import commands, lifecycle, output, plan, precheck, runner
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
    p.add_argument("--frame-cache", default=None, metavar="DIR|off",
                   help="frame cache shared by the rows, so the table decodes each video once (default: OUT/frame_cache; "
                        "off: every row decodes; docs/frame-cache.md)")
    p.add_argument("--rows", help="comma-separated row ids to run (default: every runnable row); the others stay in the output as not run")
    p.add_argument("--dry-run", action="store_true", help="print one lmms-eval command per row on stdout and exit")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
    lifecycle.catch_interrupts()
    progress = Progress()
    try:
        return _run(args, progress)
    except (runner.StaleRowError, UsageError, precheck.PrecheckError, lifecycle.FolderBusy) as exc:
        print(f"lvu-ext reproduce: error: {exc}", file=sys.stderr)
        return 2
    except lifecycle.Interrupted as exc:
        print(f"lvu-ext reproduce: stopped by {exc}: {progress.summary()}; resume with: {_resume_line(argv, args)}", file=sys.stderr)
        return 128 + exc.signum


class Progress:
    """What an interrupted command had finished, for its one closing line."""

    def __init__(self):
        self.done: list[str] = []
        self.failed: list[str] = []
        self.current: str | None = None
        self.total = 0

    def summary(self) -> str:
        if not self.total:
            return "no row started"
        parts = [f"{len(self.done)} of {self.total} row(s) finished" + (f" ({', '.join(self.done)})" if self.done else "")]
        if self.failed:
            parts.append(f"failed: {', '.join(self.failed)}")
        if self.current:
            parts.append(f"{self.current} stopped part way (its answers so far are kept in its journal)")
        return "; ".join(parts)


def _resume_line(argv: list[str], args) -> str:
    """The same command with --out spelled out absolute: it reruns nothing finished."""
    rest, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--out":
            skip = True
        elif not item.startswith("--out="):
            rest.append(item)
    out = Path(args.out or f"reproduce_{args.table}").resolve()
    return shlex.join(["lvu-ext", "reproduce", *rest, "--out", str(out)])


def _invocation(args) -> commands.Invocation:
    from lmms_eval_plugin.paths import tasks_dir

    out = Path(args.out or f"reproduce_{args.table}").resolve()
    return commands.Invocation(pretrained=args.pretrained, out=out, include_path=str(Path(args.include_path or tasks_dir()).resolve()),
                               limit=args.limit, processes=args.processes, system_prompt=args.system_prompt, model_args=args.model_args,
                               frame_cache=_frame_cache(args, out))


def _frame_cache(args, out: Path) -> str | None:
    if args.frame_cache == "off":
        return None
    return str(Path(args.frame_cache).resolve()) if args.frame_cache else str(out / "frame_cache")


def _run(args, progress: Progress) -> int:
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
    precheck.check(inv, rows, tasks=False)  # cheap and certain: before the lock and the plan
    lock = None if args.dry_run else lifecycle.lock_folder(inv.out)
    if not args.dry_run:  # a dry run may print commands for tasks installed elsewhere
        precheck.check(inv, rows, model_args=False)
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
    progress.total = len(rows)
    for row in rows:
        folder = commands.row_dir(inv, row)
        if row.id in done:
            log.info("%s: results already in %s, not run again", row.id, folder)
            measured[row.id] = found[row.id]
            progress.done.append(row.id)
            continue
        position = todo.index(row) + 1
        log.info("[%d/%d] %s: %s on %s (log: %s)", position, len(todo), row.id, row.task, args.pretrained, folder / runner.LOG_FILE)
        progress.current = row.id
        got, why = runner.run_row(row, folder, argvs[row.id])
        progress.current = None
        if why:
            failed[row.id] = f"failed: {why}"
            progress.failed.append(row.id)
            log.error("%s %s", row.id, failed[row.id])
        else:
            measured[row.id] = got
            progress.done.append(row.id)
            log.info("%s: %s %s %.2f on %s question(s)", row.id, row.benchmark, row.column, got.score, got.n)
        rest = [needs[r.id] for r in todo[position:]]
        if rest:
            log.info("time for the %d row(s) left: %s", len(rest),
                     plan.estimate_hours([n.sampled for n in rest], _timed(table, inv), inv.processes, _why_unsampled(rest)))
    lines = compare(table, measured, failed)
    _write(table, lines, inv, args)
    if lock is not None:
        os.close(lock)
    return 1 if failed else 0


def _why_unsampled(needs: list) -> str:
    return next((n.why_unsampled for n in needs if n.sampled is None and n.why_unsampled), "")


def _timed(table, inv):
    return plan.timed_rows(table, lambda row: commands.row_dir(inv, row))


def _say_plan(table, rows, needs, done, inv) -> None:
    pending = [row for row in rows if row.id not in done]
    docs = [needs[r.id].docs for r in pending]
    frames = [needs[r.id].frames for r in pending]
    sampled = [needs[r.id].sampled for r in pending]
    known = all(d is not None for d in docs)
    log.info("%s: %d runnable row(s), %d already in %s, %d to run", table.name, len(rows), len(done), inv.out, len(pending))
    stage = commands.frame_cache_stage(inv)
    kept = "as the checkpoint's processor resized it" if stage == "processed" else "as decoded"
    log.info("frame cache: %s", f"{inv.frame_cache} (shared by the rows: each video is decoded once for the table and kept {kept}, "
             f"frame_cache_stage={stage}; --frame-cache off to decode in every row)" if inv.frame_cache else "off (every row decodes its videos)")
    for row in pending:
        n = needs[row.id]
        what = (f"{n.docs} question(s) on {n.videos if n.videos is not None else 'an unknown number of'} video(s), "
                f"up to {n.frames} frames{' (a rate, capped)' if n.rate_based else ''}; "
                f"{n.sampled if n.sampled is not None else 'unknown'} frames to sample"
                f"{'' if n.sampled is not None else f' ({n.why_unsampled})'}") if n.docs is not None else f"size unknown: {n.why_unknown}"
        log.info("  %s (%s): %s", row.id, row.task, what)
    if pending:
        total = f"{sum(docs)} question(s), up to {sum(frames)} frames" if known and all(f is not None for f in frames) else "size partly unknown"
        if all(f is not None for f in sampled):
            total += f", {sum(sampled)} frames to sample on these videos"
        log.info("to run: %s; time: %s", total,
                 plan.estimate_hours(sampled, _timed(table, inv), inv.processes, _why_unsampled([needs[r.id] for r in pending])))


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
