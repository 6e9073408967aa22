"""`lvu-ext reproduce` without running lmms-eval: the tables agree with the report's published
rows, the tolerance is its closed form, verdicts follow it, and every option changes the
command it says it changes."""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path

import pytest

from lmms_eval_plugin.report.references import load_references
from lmms_eval_plugin.reproduce import commands, plan
from lmms_eval_plugin.reproduce.tables import load_table, table_names
from lmms_eval_plugin.reproduce.verdict import DIFFERS, REPRODUCES, Measured, compare, tolerance

TABLES = ("video-mme-ablation", "pooling", "main")


def reference_scores() -> dict:
    """(benchmark, column, 'Table N') -> the scores the report's paper rows give there."""
    out: dict = {}
    for ref in load_references():
        found = re.search(r"arXiv:2409\.20018v1 (Table \d)", ref.source)
        if found:
            for column, value in ref.scores.items():
                out.setdefault((ref.benchmark.key, column, found.group(1)), set()).add(value)
    return out


def test_the_issue_tables_exist_and_validate():
    assert set(table_names()) == set(TABLES)
    for name in TABLES:
        table = load_table(name)
        assert table.runnable and all(r.task for r in table.runnable)
        assert all(r.why for r in table.rows if not r.runnable)


def test_paper_scores_agree_with_the_reports_reference_rows():
    """Two files typed from the paper separately (reference_results.json for the report,
    reproduce_tables.json here): a row present in both carries the same number."""
    published = reference_scores()
    checked = 0
    for name in TABLES:
        for row in load_table(name).rows:
            if row.runnable:  # the rows a verdict is drawn on
                table_no = row.source.split(",")[0]  # "Table 4"
                candidates = published.get((row.benchmark, row.column, table_no), set())
                assert row.paper in candidates, (name, row.id, row.paper, candidates)
                checked += 1
    assert checked == 24


def test_tolerance_is_two_standard_errors_of_a_difference():
    # Video-MME: 2,700 questions, both rows near 60%
    assert tolerance(60.0, 60.0, 2700) == pytest.approx(200 * math.sqrt(2 * 0.24 / 2700))
    assert tolerance(60.0, 60.0, 2700) == pytest.approx(2.67, abs=0.01)
    assert tolerance(61.0, 56.2, 100) > tolerance(61.0, 56.2, 1000)


def _measured(score, n=2700, **kw):
    return Measured(score=score, n=n, harness=kw.get("harness", "0.7.3"), revision=kw.get("revision", "abc"), limit=kw.get("limit"))


def test_verdicts_follow_the_tolerance_and_refuse_unlike_rows():
    table = load_table("video-mme-ablation")
    base = 56.2
    got = {"baseline_f256": _measured(base), "baseline_f32": _measured(base + 2.0 + 1.0),  # gap 1.0: within
           "yarn_language_f256": _measured(base + 2.3 + 4.0),  # gap 4.0: beyond
           "vcwe_no_pooling_f256": _measured(base + 4.8, harness="0.6.0"),
           "vcwe_pooling_f256": _measured(base + 5.1, limit=2)}
    lines = {line.row.id: line for line in compare(table, got, {})}
    assert lines["baseline_f256"].verdict == "baseline" and lines["baseline_f256"].measured_delta == 0
    assert lines["baseline_f32"].verdict == REPRODUCES and lines["baseline_f32"].delta_gap == pytest.approx(1.0)
    assert lines["yarn_language_f256"].verdict == DIFFERS and lines["yarn_language_f256"].delta_gap == pytest.approx(4.0)
    assert "another harness version" in lines["vcwe_no_pooling_f256"].verdict
    assert "--limit" in lines["vcwe_pooling_f256"].verdict
    assert lines["vcwe_finetuned_f256"].status == "not runnable"
    missing = {line.row.id: line for line in compare(table, {"baseline_f32": _measured(58.0)}, {"baseline_f256": "failed: x"})}
    assert missing["baseline_f256"].status == "failed" and "no measurement" in missing["baseline_f32"].verdict


def _argv(**kw):
    row = load_table("video-mme-ablation").row("vcwe_pooling_f256")
    inv = commands.Invocation(pretrained="llava-hf/llava-onevision-qwen2-7b-ov-hf", out=Path("/runs/r"), include_path="/tasks", **kw)
    return commands.lmms_eval_argv(inv, row)


def _model_args(argv):
    return dict(kv.split("=", 1) for kv in argv[argv.index("--model_args") + 1].split(","))


def test_every_option_changes_what_it_says():
    plain = _argv()
    assert plain[0] == "lmms-eval" and "--limit" not in plain
    args = _model_args(plain)
    assert args["pretrained"] == "llava-hf/llava-onevision-qwen2-7b-ov-hf"  # a real hub id passes unchanged
    assert (args["rope_ext"], args["pooling"]) == ("vcwe", "progressive")
    assert args["system_prompt"] == commands.PAPER_SYSTEM_PROMPT
    assert args["resume_journal"] == "/runs/r/rows/vcwe_pooling_f256/journal"
    assert plain[plain.index("--output_path") + 1] == "/runs/r/rows/vcwe_pooling_f256"
    assert plain[plain.index("--include_path") + 1] == "/tasks" and plain[plain.index("--tasks") + 1] == "videomme_lvu_f256"
    assert _argv(limit="5")[-2:] == ["--limit", "5"]
    assert "system_prompt" not in _model_args(_argv(system_prompt=""))
    assert _model_args(_argv(model_args="attn_implementation=flash_attention_2"))["attn_implementation"] == "flash_attention_2"
    assert "frame_cache" not in args  # no cache unless the invocation has one
    cached = _model_args(_argv(frame_cache="/runs/r/frame_cache"))
    assert (cached["frame_cache"], cached["frame_cache_stage"]) == ("/runs/r/frame_cache", "processed")  # one checkpoint per table
    mine = _model_args(_argv(frame_cache="/runs/r/frame_cache", model_args="frame_cache_stage=decoded"))
    assert mine["frame_cache_stage"] == "decoded"  # the user's own wins
    multi = _argv(processes=8)
    assert multi[:7] == ["accelerate", "launch", "--multi_gpu", "--num_processes", "8", "-m", "lmms_eval"]
    assert shlex.split(commands.shell_line(plain)) == plain  # the printed line is the argv


def test_limit_counts_like_lmms_eval():
    assert plan._limited(2700, None) == 2700
    assert plan._limited(2700, "2") == 2
    assert plan._limited(10, "0.25") == 3  # a fraction below 1: ceil of the share, as get_sample_size
    assert plan._limited(3, "50") == 3


def test_estimate_is_unknown_until_a_row_is_timed():
    assert plan.estimate_hours([512], [], 1).startswith("unknown")
    timed = [{"wall_s": 3600.0, "frames": 1000}]
    assert plan.estimate_hours([2000], timed, 8).startswith("about 2.0 h on this node (16.0 h of device time at 8")
    assert plan.estimate_hours([None], timed, 1).startswith("unknown")


def test_peak_memory_is_not_measured_off_cuda():
    import torch

    from lmms_eval_plugin.engine import peak_memory

    peak_memory.reset("cpu")  # a no-op, not an error
    assert peak_memory.record_field("cpu") == {} == peak_memory.record_field(torch.device("cpu"))
