"""The benchmarks the report knows: which task names belong to them, which metric the
harness writes, on what scale, and which sub-scores can be rebuilt from its samples file.

Scales were read from lmms-eval's own aggregation functions (0.7.x):
- mlvu/utils.py `mlvu_aggregate_results_dev|test` returns the mean of per-task-type
  accuracies in percent (a task type with no sample counts as 0 in that mean).
- videomme/utils.py `videomme_aggregate_results` returns overall accuracy in percent and
  only *logs* short/medium/long.
- longvideobench/utils.py `longvideobench_aggregate_results` returns a 0-1 fraction
  (rounded to 5 places) and only logs the duration groups.
- lvbench.yaml aggregates `lvbench_score` (a bool per sample) with `mean`: a 0-1 fraction.
- egoschema/utils.py `egoschema_aggregate_score` returns a 0-1 fraction.
- videomme_long runs Video-MME's own aggregation on the long third: percent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lmms_eval_plugin.report import subscores
from lmms_eval_plugin.report.categories import LVB_GROUPS, MLVU_DEV_TYPES, VIDEOMME_DURATIONS


@dataclass(frozen=True)
class Benchmark:
    key: str  # built-in lmms-eval task name, also the base of `<key>_lvu_*` variants
    title: str  # short prefix used in column headers
    metric: str  # metric name in results JSON (`<metric>,none`)
    scale: float  # multiply the harness value by this to get percent
    main: str  # column name of the headline number
    columns: tuple[str, ...]  # all column names, headline first
    samples_field: str  # per-sample dict written by process_results
    rebuild: object  # function(list of per-sample dicts) -> {column: percent}


_mlvu_dev_cols = ("M-Avg",) + tuple(a for a, _ in MLVU_DEV_TYPES)
_vmme_cols = ("Overall",) + tuple(a for a, _ in VIDEOMME_DURATIONS)
_lvb_cols = ("Overall",) + tuple(a for a, _ in LVB_GROUPS)

BENCHMARKS: dict[str, Benchmark] = {
    b.key: b
    for b in (
        Benchmark("mlvu_dev", "MLVU", "mlvu_percetion_score", 1.0, "M-Avg", _mlvu_dev_cols, "mlvu_percetion_score", subscores.mlvu_dev),
        Benchmark("mlvu_test", "MLVU-test", "mlvu_percetion_score", 1.0, "M-Avg", ("M-Avg",), "mlvu_percetion_score", subscores.nothing),
        Benchmark("videomme", "VideoMME", "videomme_perception_score", 1.0, "Overall", _vmme_cols, "videomme_perception_score", subscores.videomme),
        Benchmark(
            "videomme_w_subtitle", "VideoMME+sub", "videomme_perception_score", 1.0, "Overall", _vmme_cols, "videomme_perception_score", subscores.videomme
        ),
        Benchmark("longvideobench_val_v", "LVB", "lvb_acc", 100.0, "Overall", _lvb_cols, "lvb_acc", subscores.longvideobench),
        Benchmark("longvideobench_val_i", "LVB-i", "lvb_acc", 100.0, "Overall", _lvb_cols, "lvb_acc", subscores.longvideobench),
        # Beyond the paper's three, headlines only: lmms-eval 0.7.3's samples files keep no
        # document fields (so not LVBench's question_type), and the per-sample values no category.
        Benchmark("lvbench", "LVBench", "lvbench_score", 100.0, "Overall", ("Overall",), "lvbench_score", subscores.nothing),
        Benchmark("egoschema_subset", "EgoSchema-subset", "score", 100.0, "Overall", ("Overall",), "score", subscores.nothing),
        Benchmark("videomme_long", "VideoMME-long", "videomme_perception_score", 1.0, "Overall", ("Overall",),
                  "videomme_perception_score", subscores.nothing),
    )
}

# Our frame-count variants (tasks/) are `<builtin>_lvu_<label>`, e.g. videomme_lvu_f64.
_VARIANT = re.compile(r"^(?P<base>.+?)_lvu_\w+$")


def benchmark_for_task(task: str) -> Benchmark | None:
    """The benchmark a task name belongs to, or None (e.g. videomme_no_visual is a
    different experiment, not Video-MME, so it is not folded in)."""
    if task in BENCHMARKS:
        return BENCHMARKS[task]
    m = _VARIANT.match(task)
    if m and m.group("base") in BENCHMARKS:
        return BENCHMARKS[m.group("base")]
    return None


def column_header(bench: Benchmark, column: str) -> str:
    return f"{bench.title} {column}"
