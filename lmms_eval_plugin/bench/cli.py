"""`lvu-ext bench`: dispatch to one bench; each lives in its own sub-package with its output
next to its measurement (memory/, workload/, decode/, gpu_suite/)."""

from __future__ import annotations

import argparse
import importlib
import sys

from lmms_eval_plugin.bench.memory import memory

# flag -> (module with main(argv), one line); checked in this order, the flag itself removed
MODES = {
    "--gpu-suite": ("lmms_eval_plugin.bench.gpu_suite.gpu_suite",
                    "the GPU measurements (memory, workload, video processor) in one command, sized for one GPU in 10 minutes"),
    "--decode": ("lmms_eval_plugin.bench.decode.decode",
                 "frame readers on realistic clips or real-world encodes (--clips corpus): time, memory, exact against FFmpeg or not"),
    "--cache-sweep": ("lmms_eval_plugin.bench.workload.cache_sweep",
                      "a 3-row sweep over decode-bound videos without, with a cold and with a pre-filled frame cache"),
    "--workload": ("lmms_eval_plugin.bench.workload.workload",
                   "K videos x Q questions through the lmms-eval CLI, llava_hf against lvu_ext settings: questions per hour"),
}
DEFAULT_MODE = "stock transformers against lvu_ext, peak memory and prefill time per frame count (the options below)"


def build_parser() -> argparse.ArgumentParser:
    p = memory.build_parser()
    width = max(map(len, MODES))
    modes = "\n".join(f"  {flag:<{width}}  {line}" for flag, (_, line) in MODES.items())
    p.description = (f"modes (one per run; `lvu-ext bench MODE --help` lists a mode's options):\n  {'(none)':<{width}}  {DEFAULT_MODE}\n"
                     f"{modes}\n\n{p.description}")
    group = p.add_argument_group("modes")
    for flag, (_, line) in MODES.items():
        group.add_argument(flag, action="store_true", help=line)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for flag, (module, _) in MODES.items():
        if flag in argv:
            return importlib.import_module(module).main([a for a in argv if a != flag])
    return memory.run(build_parser().parse_args(argv), argv)


if __name__ == "__main__":
    sys.exit(main())
