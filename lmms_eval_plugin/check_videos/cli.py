"""`lvu-ext check-videos --tasks T [--include_path P] [--out DIR] ...`

Reads every distinct video a run of these tasks would open (lmms-eval's own task loading
and doc_to_visual), on all cores, with the reader, frame plan and decode deadline a run
would use, and reports per video and for the run in DIR/check_videos.md and .json. Exits
1 when any video or document would fail, 2 on a usage error. Rerun with the same DIR to
resume: videos already checked, unchanged, are skipped."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from lmms_eval_plugin.check_videos import report, resume
from lmms_eval_plugin.check_videos.collect import TaskLoadError, collect, load_tasks
from lmms_eval_plugin.check_videos.run import check_all, default_workers
from lmms_eval_plugin.check_videos.worker import Job
from lmms_eval_plugin.engine.deadline import AUTO, MINIMUM_S
from lmms_eval_plugin.engine.video import READERS

PROG = "lvu-ext check-videos"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", required=True, help="as lmms-eval takes it: comma-separated task or group names, wildcards, YAML files")
    p.add_argument("--include_path", "--include-path", dest="include_path", help="as lmms-eval takes it: a folder of extra task YAMLs")
    p.add_argument("--limit", type=float, help="as lmms-eval's --limit: the first N docs of each task (a fraction below 1: a share)")
    p.add_argument("--gen_kwargs", default="", help="as lmms-eval's --gen_kwargs; only num_frames / fps / max_frames matter here")
    p.add_argument("--num-frames", type=int, default=32, help="the model arg num_frames (default 32): frames when the task says nothing")
    p.add_argument("--fps", type=float, help="the model arg fps: sample at this rate instead (tasks' own plans still win)")
    p.add_argument("--max-frames", type=int, help="the model arg max_frames: cap on --fps sampling")
    p.add_argument("--decoder", choices=READERS, default="auto", help="the model arg decoder: the reader to check with (default auto)")
    p.add_argument("--timeout", default=AUTO, help="the model arg decode_timeout_s: seconds per video, or auto (scaled by duration "
                   "and frames, as a run)")
    p.add_argument("--workers", type=int, default=default_workers(), help="processes reading videos (default: every core)")
    p.add_argument("--out", default="check_videos", help="folder for the report and the resume journal (default ./check_videos)")
    p.add_argument("--verify", action="store_true", help="also compare each video's frames with FFmpeg's sequential decode (the definition "
                   "of a frame): a reader that returns other frames fails the video; three times the decode work")
    p.add_argument("--fill-cache", metavar="DIR", help="store every video's decoded frames in this frame cache, as a run with "
                   "frame_cache=DIR (same plan and decoder) would: that run then decodes nothing (docs/frame-cache.md)")
    p.add_argument("--frame-cache-gb", type=float, help="the cap of the --fill-cache folder, as the model arg frame_cache_gb")
    p.add_argument("--fresh", action="store_true", help="check every video again, ignoring the results already in --out")
    return p


def _usage(args) -> str | None:
    if args.num_frames < 1:
        return f"--num-frames {args.num_frames}: must be an integer >= 1"
    if args.fps is not None and args.fps <= 0:
        return f"--fps {args.fps:g}: must be a number > 0"
    if args.max_frames is not None and (args.max_frames < 1 or args.fps is None):
        return f"--max-frames {args.max_frames}: must be an integer >= 1, given with --fps"
    if args.workers < 1:
        return f"--workers {args.workers}: must be at least 1"
    if args.limit is not None and args.limit < 0 and args.limit != -1:
        return f"--limit {args.limit:g}: must be -1 or non-negative"
    if args.timeout != AUTO:
        try:
            args.timeout = float(args.timeout)
        except ValueError:
            return f"--timeout {args.timeout}: must be a number of seconds > 0, or auto"
        if args.timeout <= 0:
            return f"--timeout {args.timeout:g}: must be a number of seconds > 0, or auto"
    return None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    problem = _usage(args)
    if problem:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    from lmms_eval.utils import simple_parse_args_string

    try:
        tasks = load_tasks(args.tasks, args.include_path)
    except TaskLoadError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    defaults = SimpleNamespace(num_frames=args.num_frames, fps=args.fps, max_frames=args.max_frames)
    try:
        gen_kwargs = simple_parse_args_string(args.gen_kwargs) if args.gen_kwargs else {}
    except ValueError as exc:
        print(f"{PROG}: error: --gen_kwargs {args.gen_kwargs!r}: {exc}", file=sys.stderr)
        return 2
    videos, doc_failures = collect(tasks, defaults, gen_kwargs, args.limit)
    return check(videos, doc_failures, args)


def check(videos: list, doc_failures: list, args) -> int:
    from tqdm import tqdm

    out = Path(args.out)
    start = time.monotonic()
    done = {} if args.fresh else resume.load(out)
    identities = {v.key: resume.identity(v.path, v.plan.describe(), args.decoder, args.timeout, args.verify) for v in videos}
    if args.fill_cache:  # a video checked without filling the cache is checked again to fill it
        identities = {key: dict(ident, fill_cache=os.path.abspath(args.fill_cache)) for key, ident in identities.items()}
    results = {key: done[key]["result"] for key, ident in identities.items() if resume.reusable(done.get(key), ident)}
    todo = [(v.key, Job(v.path, v.plan, args.decoder, args.timeout, args.verify, args.frame_cache_gb)) for v in videos if v.key not in results]
    uses = {v.key: v.uses for v in videos}
    journal = resume.Journal(out, fresh=args.fresh)
    header_limit = args.timeout if args.timeout != AUTO else MINIMUM_S
    try:
        with tqdm(total=len(videos), initial=len(results), desc="check-videos", unit="video", file=sys.stderr) as bar:
            for key, result in check_all(todo, args.workers, header_limit, cache_dir=args.fill_cache):
                result.setdefault("found", identities[key]["size_bytes"] is not None)  # the header read may not have returned
                results[key] = result
                journal.append(identities[key], result)
                status, reasons = report.assess(result)
                if status == "fail":
                    tqdm.write(f"FAIL {key[0]}: {reasons[0]} [{uses[key][0][0]} doc {uses[key][0][1]}]", file=sys.stderr)
                bar.update()
    finally:
        journal.close()
    settings = {"tasks": args.tasks, "include_path": args.include_path, "reader": args.decoder, "timeout": args.timeout,
                "workers": args.workers, "limit": args.limit, "verify": args.verify, "fill_cache": args.fill_cache}
    doc = report.build(videos, results, doc_failures, settings, time.monotonic() - start, resumed=len(videos) - len(todo))
    report.write(doc, out)
    print(report.console_summary(doc, out))
    return 1 if doc["summary"]["fail"] or doc["summary"]["docs_without_video"] else 0


if __name__ == "__main__":
    sys.exit(main())
