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
    "bench": ("lmms_eval_plugin.bench.cli", "Side-by-side memory/speed benchmark (stock vs lvu_ext)."),
    "reproduce": ("lmms_eval_plugin.reproduce.cli", "Run one of the paper's tables on your checkpoint and say, row by row, whether its gains reproduce."),
    "variants": ("lmms_eval_plugin.tasks.variants_cli", "Frame-count variants of any installed lmms-eval video task, for --include_path."),
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        parser = argparse.ArgumentParser(prog="lvu-ext")
        parser.add_argument("command", choices=sorted(SUBCOMMANDS), help="; ".join(f"{k}: {v[1]}" for k, v in SUBCOMMANDS.items()))
        parser.parse_args(argv[:1] or ["--help"])
        return 2
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
