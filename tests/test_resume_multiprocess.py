"""Resume under two processes (CPU `accelerate launch`): a run killed part way and started
again with the same `--use_cache DIR` answers each rank's journaled documents from the
journal, runs the model only for the others, and ends with the same answers and score
as an uninterrupted run (one process: test_data_parallel.py shows 2 processes answer
exactly as one). Also checks lvu_ext_run.json of a 2-process run."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import sys

import pytest

from cli_runner import offline_env, records, results_file, run_cli, samples
from lmms_eval_plugin.bookkeeping.journal import STOP_AFTER_ENV
from lmms_eval_plugin.engine.video import FramePlan
from video_fixtures import TASK, TASK_DIR, write_docs, write_noise_video

COLOURS = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 0, 255)]  # 2 docs per rank, no padding request
FRAMES = 4
LAUNCH_2 = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29533", "-m", "lmms_eval"]


def answers(out):
    return {row["doc_id"]: row["filtered_resps"] for row in samples(out, TASK)}


def rank_records(out):
    return [rec for rank in (0, 1) for rec in records(out / f"lvu_ext_requests_rank{rank}.jsonl")]


def test_two_process_run_killed_part_way_resumes_per_rank(tmp_path):
    videos = [str(write_noise_video(tmp_path / f"v{i}.mp4", colour=c)) for i, c in enumerate(COLOURS)]
    docs = write_docs(tmp_path / "docs.json", [(f"clip{i}", v) for i, v in enumerate(videos)])
    env = offline_env(tmp_path, LVU_EXT_TEST_DOCS=str(docs), LVU_EXT_CACHE=str(tmp_path / "lvu_cache"))
    env_2 = dict(env, ACCELERATE_USE_CPU="1")
    args = ["--model", "lvu_ext", "--model_args", f"pretrained=tiny-random-onevision,num_frames={FRAMES}",
            "--tasks", TASK, "--include_path", str(TASK_DIR), "--log_samples"]
    cache = tmp_path / "cache"

    reference = tmp_path / "reference"
    run_cli(args + ["--output_path", str(reference)], env)

    # each rank dies (as under SIGKILL) after its first journaled answer; the launcher then
    # stops the other rank wherever it is, so 1 or 2 answers survive
    killed = tmp_path / "killed"
    proc = run_cli(args + ["--output_path", str(killed), "--use_cache", str(cache)], dict(env_2, **{STOP_AFTER_ENV: "1"}),
                   launcher=LAUNCH_2, check_rc=False)
    assert proc.returncode != 0, proc.stderr[-3000:]
    assert not list(killed.rglob("*_results.json"))
    journaled = [entry["doc_id"] for path in sorted(cache.glob("lvu_ext_journal_rank*.jsonl")) for entry in records(path)]
    assert 1 <= len(journaled) <= 2 and len(set(journaled)) == len(journaled), journaled

    resumed = tmp_path / "resumed"
    run_cli(args + ["--output_path", str(resumed), "--use_cache", str(cache)], env_2, launcher=LAUNCH_2)
    recs = rank_records(resumed)
    model_calls = sorted(r["doc_id"] for r in recs if not r.get("from_journal"))
    assert model_calls == sorted(set(range(len(COLOURS))) - set(journaled))  # only the missing documents ran the model
    assert sorted(r["doc_id"] for r in recs if r.get("from_journal")) == sorted(journaled)

    assert answers(resumed) == answers(reference)
    assert len(set(answers(reference).values())) >= 3  # answers differ per doc, so a mix-up would show
    assert results_file(resumed)["results"][TASK]["accuracy,none"] == pytest.approx(results_file(reference)["results"][TASK]["accuracy,none"])

    # the manifest of a 2-process run: one file, written by rank 0, named by both ranks' records
    manifest_file = resumed / "lvu_ext_run.json"
    manifest = json.loads(manifest_file.read_text())
    assert manifest["processes"] == 2
    assert manifest["versions"] == {p: importlib.metadata.version(p) for p in ("lmms-eval", "transformers", "torch", "accelerate", "lvu_ext")}
    task = manifest["tasks"][TASK]
    assert task["frame_plan"] == FramePlan(num_frames=FRAMES).describe()
    yaml_file = TASK_DIR / f"{TASK}.yaml"
    assert task["yaml"] == str(yaml_file.resolve()) and task["yaml_sha256"] == hashlib.sha256(yaml_file.read_bytes()).hexdigest()
    assert {r["run_manifest"] for r in recs} == {str(manifest_file)}
