"""A failure in lvu_ext's request path through the real lmms-eval CLI (a task whose
generation kwargs `generate` rejects, after a task that answers fine): the run exits
non-zero, its one-line message names the task, the document and the exception and says
how to resume, the journal keeps every answer made before it, and running the good task
again with the same --use_cache answers it from the journal without the model."""

from cli_runner import offline_env, records, run_cli
from video_fixtures import TASK, TASK_DIR, write_docs, write_noise_video

BAD_TASK = "lvu_test_bad_kwargs"
COLOURS = [(255, 0, 0), (0, 0, 255)]


def test_request_failure_exits_non_zero_and_keeps_the_journal(tmp_path):
    videos = [str(write_noise_video(tmp_path / f"v{i}.mp4", colour=c)) for i, c in enumerate(COLOURS)]
    docs = write_docs(tmp_path / "docs.json", [(f"clip{i}", v) for i, v in enumerate(videos)])
    env = offline_env(tmp_path, LVU_EXT_TEST_DOCS=str(docs), LVU_EXT_CACHE=str(tmp_path / "lvu_cache"))
    cache, out = tmp_path / "cache", tmp_path / "out"

    def cli(tasks, output):
        return run_cli(["--model", "lvu_ext", "--model_args", "pretrained=tiny-random-onevision,num_frames=4",
                        "--tasks", tasks, "--include_path", str(TASK_DIR), "--output_path", str(output),
                        "--use_cache", str(cache)], env, check_rc=False)

    # lmms-eval 0.7.3 sorts the task names, then its ChainMap runs them last first: TASK, then BAD_TASK
    proc = cli(f"{TASK},{BAD_TASK}", out)
    assert proc.returncode != 0, proc.stderr[-3000:]
    assert not list(out.rglob("*_results.json"))
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"lvu_ext: {BAD_TASK} doc "), last_line
    assert "ValueError" in last_line and "max_new_tokens" in last_line, last_line
    assert "--use_cache" in last_line and "lvu_ext_journal_rank0.jsonl" in last_line, last_line

    recs = records(out / "lvu_ext_requests.jsonl")
    answered = {(r["task"], r["doc_id"]) for r in recs if r["status"] == "ok"}
    failed = [(r["task"], r["doc_id"]) for r in recs if r["status"] == "error"]
    assert len(failed) == 1 and failed[0][0] == BAD_TASK and f"doc {failed[0][1]}:" in last_line
    assert answered, "no answer was made before the failure: did the harness change its task order?"
    assert all(task == TASK for task, _ in answered)
    journal = records(cache / "lvu_ext_journal_rank0.jsonl")
    assert {(e["task"], e["doc_id"]) for e in journal} == answered  # every answer made before the failure, nothing else

    # the good task again, same cache: what was answered comes from the journal
    again = tmp_path / "again"
    proc = cli(TASK, again)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = records(again / "lvu_ext_requests.jsonl")
    assert {(r["task"], r["doc_id"]) for r in resumed if r.get("from_journal")} == answered
    assert len(resumed) == len(COLOURS)
