"""`lvu-ext` command: small helpers around lmms-eval runs.

Subcommands live in their own modules and expose `main(argv)`; this file only dispatches.
"""

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "tasks-path": ("lmms_eval_plugin.paths", "Print the folder to pass to lmms-eval --include_path."),
    "report": ("lmms_eval_plugin.report.cli", "Tables and plots from lmms-eval output folders."),
    "doctor": ("lmms_eval_plugin.doctor.cli", "Check the install: versions, known-bad combinations, decoders, GPU, tasks, video folders."),
    "bench": ("lmms_eval_plugin.bench.cli", "Benchmarks: memory and prefill time against stock transformers, a whole workload, frame readers, the GPU suite."),
    "reproduce": ("lmms_eval_plugin.reproduce.cli", "Run one of the paper's tables on your checkpoint and say, row by row, whether its gains reproduce."),
    "variants": ("lmms_eval_plugin.tasks.variants_cli", "Frame-count variants of any installed lmms-eval video task, for --include_path."),
    "check-videos": ("lmms_eval_plugin.check_videos.cli", "Read every video of a run's tasks as the run would, before GPU time is spent: failures, frames, decode core-hours."),
}


def _parser() -> argparse.ArgumentParser:
    # One command per line (argparse would run the choices' help together into one paragraph).
    width = max(map(len, SUBCOMMANDS))
    listing = "\n".join(f"  {name:<{width}}  {line}" for name, (_, line) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(prog="lvu-ext", description="Helpers around lmms-eval runs with the lvu_ext model.",
                                     epilog=f"commands:\n{listing}\n\n`lvu-ext COMMAND --help` lists a command's options.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", metavar="COMMAND", choices=sorted(SUBCOMMANDS), help="one of the commands below")
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        parser = _parser()
        if not argv:  # no command is a usage error: the help, on stderr
            parser.print_help(sys.stderr)
            return 2
        parser.parse_args(argv[:1])
        return 2
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
