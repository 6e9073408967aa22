"""Sub-scores the results JSON lacks, rebuilt from the per-sample dicts that each task's
`process_results` writes into the samples JSONL, counted exactly as the harness's
aggregation functions count them (so a rebuilt headline equals the harness's number).

Each function returns {column: percent}; a group with no sample is left out (blank in the
table) rather than shown as 0%.
"""

from __future__ import annotations

from lmms_eval_plugin.report.categories import LVB_GROUPS, MLVU_DEV_TYPES, VIDEOMME_DURATIONS


def _accuracy(items: list[dict], correct) -> float | None:
    if not items:
        return None
    return 100.0 * sum(1 for it in items if correct(it)) / len(items)


def _groups_and_overall(samples: list[dict], groups, group_of, correct) -> dict[str, float]:
    """Accuracy per (column, group value) and over all samples."""
    out = {}
    for column, group in groups:
        acc = _accuracy([s for s in samples if group_of(s) == group], correct)
        if acc is not None:
            out[column] = acc
    overall = _accuracy(samples, correct)
    if overall is not None:
        out["Overall"] = overall
    return out


def nothing(samples: list[dict]) -> dict[str, float]:
    return {}


def mlvu_dev(samples: list[dict]) -> dict[str, float]:
    out = {}
    per_type = {}
    for abbrev, task_type in MLVU_DEV_TYPES:
        # mlvu_aggregate_results_dev: correct = pred_answer == answer, per task_type
        acc = _accuracy([s for s in samples if s.get("task_type") == task_type], lambda s: s.get("pred_answer") == s.get("answer"))
        per_type[abbrev] = acc
        if acc is not None:
            out[abbrev] = acc
    if samples:
        # The harness averages over all seven types, an empty type counting as 0.
        out["M-Avg"] = sum(v or 0.0 for v in per_type.values()) / len(per_type)
    return out


def videomme(samples: list[dict]) -> dict[str, float]:
    # videomme_aggregate_results compares pred_answer == answer (case-sensitive), not `score`.
    def correct(s):
        return s.get("pred_answer") == s.get("answer")

    return _groups_and_overall(samples, VIDEOMME_DURATIONS, lambda s: s.get("duration"), correct)


def longvideobench(samples: list[dict]) -> dict[str, float]:
    # eval_multi_choice: gold (a letter, or a list of letters) must equal parsed_pred.
    def correct(s):
        gold = s.get("answer")
        return s.get("parsed_pred") in gold if isinstance(gold, list) else s.get("parsed_pred") == gold

    return _groups_and_overall(samples, LVB_GROUPS, lambda s: _as_int(s.get("duration_group")), correct)


def _as_int(value):
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None
