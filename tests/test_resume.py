"""Resume: a run killed after some documents and started again with the same
`--use_cache DIR` recomputes only the documents it had not answered, and ends with the
same answers and score as a run that was never interrupted."""

import pytest

from cli_runner import offline_env, records, results_file, run_cli, samples
from lmms_eval_plugin.bookkeeping.journal import STOP_AFTER_ENV
from video_fixtures import TASK, TASK_DIR, write_docs, write_noise_video

COLOURS = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 0, 255), (0, 255, 0)]
DOCS, KILL_AFTER = len(COLOURS), 2


def answers(out):
    return {row["doc_id"]: row["filtered_resps"] for row in samples(out, TASK)}


def test_killed_run_resumes_from_journal(tmp_path):
    videos = [str(write_noise_video(tmp_path / f"v{i}.mp4", colour=c)) for i, c in enumerate(COLOURS)]
    docs = write_docs(tmp_path / "docs.json", [(f"clip{i}", videos[i]) for i in range(DOCS)])
    env = offline_env(tmp_path, LVU_EXT_TEST_DOCS=str(docs), LVU_EXT_CACHE=str(tmp_path / "lvu_cache"))
    args = ["--model", "lvu_ext", "--model_args", "pretrained=tiny-random-onevision,num_frames=8",
            "--tasks", TASK, "--include_path", str(TASK_DIR), "--log_samples"]
    cache = tmp_path / "cache"

    reference = tmp_path / "reference"
    run_cli(args + ["--output_path", str(reference)], env)

    killed = tmp_path / "killed"
    proc = run_cli(args + ["--output_path", str(killed), "--use_cache", str(cache)], dict(env, **{STOP_AFTER_ENV: str(KILL_AFTER)}),
                   check_rc=False)
    assert proc.returncode == 86, proc.stderr[-3000:]  # died like a kill: nothing finished, nothing cached by the harness
    assert not list(killed.rglob("*_results.json"))
    journal = cache / "lvu_ext_journal_rank0.jsonl"
    assert len(journal.read_text().splitlines()) == KILL_AFTER

    resumed = tmp_path / "resumed"
    proc = run_cli(args + ["--output_path", str(resumed), "--use_cache", str(cache)], env)
    assert f"lvu_ext: {KILL_AFTER} of {DOCS} generate_until requests answered from the resume journal" in proc.stdout + proc.stderr

    # only the missing documents ran the model; the journaled ones are recorded as such
    recs = records(resumed / "lvu_ext_requests.jsonl")
    computed = sorted(r["doc_id"] for r in recs if not r.get("from_journal"))
    assert computed == list(range(KILL_AFTER, DOCS))
    assert sorted(r["doc_id"] for r in recs if r.get("from_journal")) == list(range(KILL_AFTER))
    assert len(journal.read_text().splitlines()) == DOCS

    # same per-sample answers and aggregated metric as the uninterrupted run
    assert answers(resumed) == answers(reference)
    assert len(set(answers(reference).values())) >= 3  # answers differ per doc, so a mix-up would show
    metric = "accuracy,none"
    assert results_file(resumed)["results"][TASK][metric] == pytest.approx(results_file(reference)["results"][TASK][metric])
