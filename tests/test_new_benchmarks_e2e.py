"""LVBench, EgoSchema (subset) and Video-MME-long variants end to end: the lvu_ext model
(tiny random checkpoint) through the lmms-eval CLI on local fixtures in each benchmark's
document layout; the harness scores with its own aggregation, the model samples each
variant's frame count, and `lvu-ext report` shows the harness's numbers in percent."""

from __future__ import annotations

import csv
import json

import pytest

from benchmark_fixtures import build_local_benchmark, harness_metric, read_outputs, run_lmms_eval
from lmms_eval_plugin.report import cli as report_cli
from lmms_eval_plugin.report.benchmarks import BENCHMARKS, column_header

NEW = ("lvbench", "egoschema_subset", "videomme_long")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("new_benchmarks")
    local = {b: build_local_benchmark(root, b) for b in NEW}
    tasks = {local[b].task_for("f32"): local[b] for b in NEW}
    out, records = root / "out", root / "records.jsonl"
    any_bench = local["lvbench"]
    proc = run_lmms_eval(
        ["--model", "lvu_ext", "--model_args", f"pretrained=tiny-random-onevision,record_path={records}",
         "--tasks", ",".join(tasks), "--include_path", any_bench.include_path_arg, "--output_path", str(out), "--log_samples"],
        env=any_bench.env,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Error during evaluation" not in log, log[-4000:]
    results, samples = read_outputs(out)
    lines = [json.loads(line) for line in records.read_text().splitlines() if line.strip()]
    report_dir = root / "report"
    assert report_cli.main([str(out), "--out", str(report_dir), "-q", "--no-references"]) == 0
    with open(report_dir / "report.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {"tasks": tasks, "results": results, "samples": samples, "records": lines, "rows": rows}


def test_every_doc_answered_with_the_variants_frame_count(run):
    for task, bench in run["tasks"].items():
        assert [s["doc_id"] for s in run["samples"][task]] == list(range(len(bench.docs)))
        records = sorted((r for r in run["records"] if r["task"] == task), key=lambda r: r["doc_id"])
        assert [r["doc_id"] for r in records] == list(range(len(bench.docs)))
        for record, frames in zip(records, bench.doc_frames):
            assert record["status"] == "ok" and record["frames_requested"] == 32
            assert record["frames_sampled"] == min(32, frames)
    long_docs = run["tasks"]["videomme_long_lvu_f32"].docs
    assert long_docs and all(d["duration"] == "long" for d in long_docs)  # the harness's own process_docs filtered them


def test_scores_are_the_harness_aggregation_and_land_in_the_report(run):
    row = next(r for r in run["rows"] if r["Frames"] == "32" and r["Model"].startswith("lvu_ext"))
    for task in run["tasks"]:
        metric, expected = harness_metric(task, run["samples"][task])
        value = run["results"]["results"][task][f"{metric},none"]
        assert value == pytest.approx(expected)
        bench = BENCHMARKS[task.rsplit("_lvu_", 1)[0]]
        assert float(row[column_header(bench, bench.main)]) == pytest.approx(value * bench.scale, abs=0.01)


def test_samples_files_keep_no_document_fields(run):
    """Why LVBench has no per-question-type columns: lmms-eval 0.7.3 writes no document
    fields into the samples file, so `question_type` cannot be recounted from it."""
    assert all("question_type" not in s and "doc" not in s for s in run["samples"]["lvbench_lvu_f32"])
    assert [c for c in BENCHMARKS["lvbench"].columns] == ["Overall"]


def test_egoschema_full_set_writes_its_submission_per_variant(tmp_path, monkeypatch):
    """EgoSchema's full set is scored by a remote server: the variant's aggregation is the
    harness's own, writing into <output_path>/<task>/submissions/ and then asking the server
    (stood in for here: no network in tests)."""
    import argparse
    import importlib.util

    import requests

    from cli_runner import REPO

    spec = importlib.util.spec_from_file_location("egoschema_lvu_submission", REPO / "tasks" / "egoschema" / "lvu_submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    posted = []

    class Reply:
        status_code = 200
        text = "Total result: 1 correct, 1 wrong, 0 missing, 0 invalid, accuracy: 0.5"

    monkeypatch.setattr(requests, "post", lambda url, headers=None, json=None, timeout=None: posted.append(json) or Reply())
    results = [{"video-a": 0}, {"video-b": 3}]
    score = module.egoschema_lvu_f64(results, argparse.Namespace(output_path=str(tmp_path)))
    assert score == pytest.approx(50.0)  # the harness's own parse of the server's answer
    files = list((tmp_path / "egoschema_lvu_f64" / "submissions").glob("inference_results_egoschema_MC_*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text()) == {"video-a": 0, "video-b": 3} == posted[0]
