"""Data parallel: a 2-process `accelerate launch` run of the demo task answers every
document exactly as a 1-process run does (lmms-eval shards by rank and gathers)."""

import sys

from cli_runner import TASKS, offline_env, records, results_file, run_cli, samples

ARGS = ["--model", "lvu_ext", "--model_args", "pretrained=tiny-random-onevision,num_frames=8",
        "--tasks", "lvu_demo", "--include_path", str(TASKS), "--log_samples"]
# accelerate's `--cpu` flag starts a single process; on a CPU-only machine two processes
# come from the multi-process launcher with ACCELERATE_USE_CPU=1 (gloo backend).
LAUNCH_2 = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29531", "-m", "lmms_eval"]


def answers(out):
    return {row["doc_id"]: row["filtered_resps"] for row in samples(out, "lvu_demo")}


def test_two_processes_match_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    run_cli(ARGS + ["--output_path", str(one)], offline_env(tmp_path))
    run_cli(ARGS + ["--output_path", str(two)], offline_env(tmp_path, ACCELERATE_USE_CPU="1"), launcher=LAUNCH_2)

    assert answers(one) == answers(two)
    assert len(answers(two)) == 4
    assert results_file(one)["results"]["lvu_demo"] == results_file(two)["results"]["lvu_demo"]
    # both ranks did work: each wrote its own request records, together covering every doc
    per_rank = [records(two / f"lvu_ext_requests_rank{r}.jsonl") for r in (0, 1)]
    assert all(per_rank)
    assert sorted(rec["doc_id"] for recs in per_rank for rec in recs) == [0, 1, 2, 3]
