"""Values of lmms-eval command-line flags, read from `sys.argv`.

lmms-eval does not hand its CLI args to the model, but the model lives in the same
process, so `--output_path` and `--use_cache` can be read back from the command line.
"""

from __future__ import annotations


def flag_value(argv: list[str], *names: str) -> str | None:
    """The value of the last of `--name VALUE` / `--name=VALUE` (any of `names`), like argparse."""
    value = None
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
    return value


def use_cache_value(argv: list[str]) -> str | None:
    """lmms-eval's `--use_cache DIR`; its short alias `-c` only counts when lmms-eval is the
    program (other programs, pytest among them, use `-c` for other things)."""
    under_lmms_eval = bool(argv) and ("lmms_eval" in argv[0] or "lmms-eval" in argv[0])
    return flag_value(argv, "--use_cache", "-c") if under_lmms_eval else flag_value(argv, "--use_cache")
