"""`python -m lmms_eval_plugin.bench.workload.workload_launch <lmms-eval args>`: the lmms-eval CLI,
unchanged, with the time spent in `lmms_eval.evaluator.evaluate` (building the requests,
every model call, scoring; model loading excluded) written as JSON to
$LVU_WORKLOAD_TIMING (`.rankN` appended per process under accelerate launch). Used by `lvu-ext bench --workload` for every case alike."""

import json
import os
import sys
import time

TIMING_ENV = "LVU_WORKLOAD_TIMING"


def main() -> None:
    from lmms_eval import evaluator
    from lmms_eval.__main__ import cli_evaluate

    original = evaluator.evaluate

    def timed_evaluate(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            path = os.environ[TIMING_ENV]
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # one file per process under accelerate launch
                path += f".rank{os.environ.get('RANK', '0')}"
            with open(path, "w", encoding="utf-8") as fh:
                json.dump({"evaluate_s": time.perf_counter() - start}, fh)

    evaluator.evaluate = timed_evaluate
    sys.argv = ["lmms_eval", *sys.argv[1:]]
    cli_evaluate()


if __name__ == "__main__":
    main()
