"""`lvu-ext doctor`: run every check, print one line each, exit 1 when a run would break."""

from __future__ import annotations

import argparse
import sys

from lmms_eval_plugin.doctor import checks
from lmms_eval_plugin.doctor.result import FAIL, Check

# In the order a user reads them: versions first, the things that use them after.
CHECKS = (
    checks.versions,
    checks.known_bad_combinations,
    checks.torch_pair,
    checks.lmms_eval_evaluator,
    checks.entry_point,
    checks.video_decoders,
    checks.decode_workers,
    checks.accelerator,
    checks.tasks_folder,
    checks.hf_home,
    checks.video_folders,
    checks.embedded_default,
)


def run_checks() -> list[Check]:
    results = []
    for check in CHECKS:
        try:
            found = check()
        except Exception as exc:  # a check that breaks is itself a finding
            found = Check(FAIL, check.__name__, f"the check itself failed: {type(exc).__name__}: {exc}")
        results.extend(found if isinstance(found, list) else [found])
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lvu-ext doctor", description="Check what an lvu_ext run needs.")
    parser.parse_args(argv)
    results = run_checks()
    for result in results:
        print(result.line(), flush=True)
    failed = [r for r in results if r.status == FAIL]
    if failed:
        print(f"lvu-ext doctor: {len(failed)} problem(s) a run needs fixed: {', '.join(r.name for r in failed)}", file=sys.stderr)
        return 1
    print("lvu-ext doctor: everything a run needs works")
    return 0
