"""End to end through the lmms-eval CLI with the lvu_ext model (tiny random checkpoint) on the
local fixture data of every benchmark: the harness scores with its own aggregation, and the
model sees the frame count of each variant (its per-request JSONL records)."""

import json
import math
from collections import defaultdict

import pytest

from benchmark_fixtures import BENCHMARKS, FPS, build_local_benchmark, expected_metadata, harness_metric, read_outputs, run_lmms_eval

# Two variants of LongVideoBench val (uniform and 1 fps), one of each other benchmark; small
# frame counts keep the CPU run short.
RUN = {
    "mlvu_dev": ["f32"],
    "mlvu_test": ["f32"],
    "videomme": ["f32"],
    "longvideobench_val_v": ["f32", "1fps_max512"],
    "longvideobench_test_v": ["1fps_max512"],
}
RECORD_KEYS = {"task", "doc_id", "frames_requested", "frames_sampled", "visual_tokens"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    local = {b: build_local_benchmark(root, b) for b in BENCHMARKS}
    tasks = {local[b].task_for(label): local[b] for b, labels in RUN.items() for label in labels}
    out, records = root / "out", root / "records.jsonl"
    any_bench = local["mlvu_dev"]
    proc = run_lmms_eval(
        ["--model", "lvu_ext", "--model_args", f"pretrained=tiny-random-onevision,record_path={records}",
         "--tasks", ",".join(tasks), "--include_path", any_bench.include_path_arg,
         "--output_path", str(out), "--log_samples"],
        env=any_bench.env,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "Error during evaluation" not in log, log[-4000:]
    results, samples = read_outputs(out)
    lines = [json.loads(line) for line in records.read_text().splitlines() if line.strip()]
    return {"tasks": tasks, "out": out, "results": results, "samples": samples, "records": lines}


def test_results_and_samples_written_with_frame_counts(run):
    for task, bench in run["tasks"].items():
        assert run["results"]["configs"][task]["metadata"] == expected_metadata(task)
        assert [s["doc_id"] for s in run["samples"][task]] == list(range(len(bench.docs)))


def test_metric_is_the_harness_aggregation_of_the_samples(run):
    for task, bench in run["tasks"].items():
        metric, expected = harness_metric(task, run["samples"][task])
        if metric == "submission":
            # Test split: the harness's submission file (question id -> raw answer), one per task.
            path = run["out"] / task / "submissions" / "longvideobench_test_for_submission.json"
            submitted = json.loads(path.read_text())
            assert set(submitted) == {d["id"] for d in bench.docs}
            by_doc = {s["doc_id"]: s["filtered_resps"] for s in run["samples"][task]}
            assert submitted == {d["id"]: by_doc[i] for i, d in enumerate(bench.docs)}
        else:
            assert isinstance(expected, float)
            assert run["results"]["results"][task][f"{metric},none"] == pytest.approx(expected)


def test_model_saw_each_variants_frame_count(run):
    by_task = defaultdict(list)
    for record in run["records"]:
        assert record.get("status") != "failed", record
        assert RECORD_KEYS <= set(record), record
        by_task[record["task"]].append(record)
    assert set(by_task) == set(run["tasks"])
    for task, bench in run["tasks"].items():
        records = {r["doc_id"]: r for r in by_task[task]}
        # One record per request (one request per doc for these generate_until tasks).
        assert len(by_task[task]) == len(bench.docs) and sorted(records) == list(range(len(bench.docs)))
        meta = expected_metadata(task)
        for doc_id, record in records.items():
            doc = bench.docs[doc_id]
            n_frames = bench.doc_frames[doc_id]
            if "lvu_num_frames" in meta:
                assert record["frames_requested"] == meta["lvu_num_frames"]
                assert record["frames_sampled"] == min(meta["lvu_num_frames"], n_frames)
            else:
                # 1 frame per second of video, capped: the fixture videos are short, so no cap.
                wanted = min(meta["lvu_max_frames"], math.ceil(n_frames * meta["lvu_fps"] / FPS))
                assert wanted == int(doc["duration"]) < 32
                assert record["frames_requested"] == wanted
                assert record["frames_sampled"] == wanted
            assert isinstance(record["visual_tokens"], int) and record["visual_tokens"] > 0
