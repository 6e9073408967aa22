"""`shard=video` through the real CLI on CPU processes (`ACCELERATE_USE_CPU=1 accelerate
launch --multi_gpu`): with 2 and 3 processes, on 4 videos x 3 questions in Video-MME's
order (lmms-eval's round-robin deal puts each video's questions on different processes),
every question of a video is answered by one process, the per-sample answers equal a
1-process run's, and the cache hits summed over the processes equal the 1-process run's.
Also: a failure on one process ends every process promptly; a run killed part way
resumes with other owners; padding requests cost no model work."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from cli_runner import offline_env, records, results_file, run_cli, samples
from conftest import make_lm, make_request
from lmms_eval_plugin.bookkeeping.journal import STOP_AFTER_ENV
from video_fixtures import TASK, TASK_DIR, write_docs, write_noise_video

COLOURS = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 0, 255)]
QUESTIONS = ("colour", "shape", "count")  # the doc's `kind`: it is part of the prompt
FRAMES = 4
FAILURE_BOUND_S = 60  # README "Data parallel": a failed process ends the others within this


def launcher(processes: int, port: int) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
            "-m", "lmms_eval"]


def videomme_docs(tmp_path: Path, layout: list[int], broken: int | None = None) -> Path:
    """Docs in Video-MME's order: video v's `layout[v]` questions are consecutive."""
    videos = [str(write_noise_video(tmp_path / f"v{i}.mp4", colour=COLOURS[i % len(COLOURS)])) for i in range(len(layout))]
    if broken is not None:
        bad = tmp_path / "broken.mp4"
        bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
        videos[broken] = str(bad)
    return write_docs(tmp_path / "docs.json", [(QUESTIONS[q], videos[v]) for v, n in enumerate(layout) for q in range(n)])


def cli_args(out: Path, task: str = TASK, **model_args) -> list[str]:
    extra = "".join(f",{k}={v}" for k, v in model_args.items())
    return ["--model", "lvu_ext", "--model_args", f"pretrained=tiny-random-onevision,num_frames={FRAMES}{extra}",
            "--tasks", task, "--include_path", str(TASK_DIR), "--log_samples", "--output_path", str(out)]


def answers(out: Path) -> dict:
    return {row["doc_id"]: row["filtered_resps"] for row in samples(out, TASK)}


def all_records(out: Path) -> list[dict]:
    return [rec for path in sorted(out.glob("lvu_ext_requests*.jsonl")) for rec in records(path)]


def hits(recs: list[dict]) -> tuple[int, int]:
    ok = [r for r in recs if r.get("status") == "ok"]
    return sum(bool(r["video_cache_hit"]) for r in ok), sum(bool(r["prefix_cache_hit"]) for r in ok)


@pytest.fixture(scope="module")
def videomme_runs(tmp_path_factory):
    """The 1-process reference and the 2- and 3-process shard=video runs of one task."""
    tmp = tmp_path_factory.mktemp("dp_video")
    docs = videomme_docs(tmp, [3, 3, 3, 3])
    env = offline_env(tmp, LVU_EXT_TEST_DOCS=str(docs), LVU_EXT_CACHE=str(tmp / "lvu_cache"))
    runs = {1: tmp / "p1"}
    run_cli(cli_args(runs[1]), env)
    for processes, port in ((2, 29541), (3, 29542)):
        runs[processes] = tmp / f"p{processes}"
        run_cli(cli_args(runs[processes]), dict(env, ACCELERATE_USE_CPU="1"), launcher=launcher(processes, port))
    return runs


@pytest.mark.parametrize("processes", [2, 3])
def test_video_sharding_answers_as_one_process_and_keeps_the_reuse(videomme_runs, processes):
    one, many = videomme_runs[1], videomme_runs[processes]
    assert answers(many) == answers(one) and len(answers(one)) == 12
    assert len(set(answers(one).values())) >= 3  # answers differ per video, so a mix-up would show
    assert results_file(many)["results"][TASK] == results_file(one)["results"][TASK]

    recs = all_records(many)
    assert sorted(r["doc_id"] for r in recs) == list(range(12))  # each doc answered once, somewhere
    assert hits(recs) == hits(records(one / "lvu_ext_requests.jsonl")) == (8, 8)
    for v in range(4):  # a video's three questions on one process
        assert len({r["process"] for r in recs if r["doc_id"] // 3 == v}) == 1
    # lmms-eval's deal (doc_id % processes) is recorded, and most documents changed hands
    assert all(r["given_to"] == r["doc_id"] % processes for r in recs)
    assert sum(r["process"] != r["given_to"] for r in recs) >= 4
    assert {r["process"] for r in recs} == set(range(processes))  # every process worked


def test_harness_sharding_is_still_there(tmp_path):
    docs = videomme_docs(tmp_path, [3, 3])
    env = offline_env(tmp_path, LVU_EXT_TEST_DOCS=str(docs), LVU_EXT_CACHE=str(tmp_path / "lvu_cache"), ACCELERATE_USE_CPU="1")
    out = tmp_path / "harness"
    run_cli(cli_args(out, shard="harness"), env, launcher=launcher(2, 29543))
    recs = all_records(out)
    assert all(r["process"] == r["given_to"] == r["doc_id"] % 2 for r in recs)
    assert hits(recs) == (2, 2)  # consecutive questions on different processes: only docs 0/2 and 3/5 meet


def test_a_failure_on_one_process_ends_every_process(tmp_path):
    # video 1 is broken; on_video_error=raise stops the process that was assigned it
    docs = videomme_docs(tmp_path, [3, 3, 3, 3, 3, 3], broken=1)
    env = offline_env(tmp_path, LVU_EXT_TEST_DOCS=str(docs), LVU_EXT_CACHE=str(tmp_path / "lvu_cache"), ACCELERATE_USE_CPU="1")
    out = tmp_path / "failed"
    start = time.monotonic()
    proc = run_cli(cli_args(out, on_video_error="raise"), env, launcher=launcher(3, 29544), check_rc=False,
                   timeout=FAILURE_BOUND_S + 240)
    elapsed = time.monotonic() - start
    assert proc.returncode != 0, proc.stderr[-3000:]
    assert not list(out.rglob("*_results.json"))
    assert f"lvu_ext: {TASK} doc 3: " in proc.stderr and "on_video_error=raise stops the run" in proc.stderr, proc.stderr[-3000:]
    # model loading and the first requests take most of this; a process left in a collective would take 30 minutes
    assert elapsed < FAILURE_BOUND_S + 120, elapsed
    answered = [r for r in all_records(out) if r.get("status") == "ok"]
    assert len(answered) < 15, "the other processes went on answering after the failure"


def test_killed_run_resumes_with_other_owners(tmp_path):
    # video 0 has one question, the others three: under shard=video the longest go first, so
    # video 0 (doc 0) lands on process 1 and video 1 (docs 1-3) on process 0, the reverse of
    # lmms-eval's deal, whose first answers (docs 0 and 1) are what the killed run journals
    docs = videomme_docs(tmp_path, [1, 3, 3, 3])
    env = offline_env(tmp_path, LVU_EXT_TEST_DOCS=str(docs), LVU_EXT_CACHE=str(tmp_path / "lvu_cache"))
    journal = tmp_path / "journal"
    reference = tmp_path / "reference"
    run_cli(cli_args(reference), env)

    env_2 = dict(env, ACCELERATE_USE_CPU="1")
    killed = tmp_path / "killed"
    proc = run_cli(cli_args(killed, shard="harness", resume_journal=journal), dict(env_2, **{STOP_AFTER_ENV: "1"}),
                   launcher=launcher(2, 29545), check_rc=False)
    assert proc.returncode != 0, proc.stderr[-3000:]
    journaled = {e["doc_id"]: int(path.stem.rsplit("rank", 1)[1])
                 for path in sorted(journal.glob("lvu_ext_journal_rank*.jsonl")) for e in records(path)}
    assert journaled and set(journaled) <= {0, 1}, journaled

    resumed = tmp_path / "resumed"
    run_cli(cli_args(resumed, shard="video", resume_journal=journal), env_2, launcher=launcher(2, 29546))
    recs = all_records(resumed)
    assert sorted(r["doc_id"] for r in recs if r.get("from_journal")) == sorted(journaled)
    assert sorted(r["doc_id"] for r in recs if not r.get("from_journal")) == sorted(set(range(10)) - set(journaled))
    for r in recs:
        if r.get("from_journal"):  # recalled by another process than the one that journaled it
            assert r["process"] != journaled[r["doc_id"]], r
    assert answers(resumed) == answers(reference)


def test_padding_requests_cost_no_model_work(tiny_checkpoints, sample_video, tmp_path):
    record_path = tmp_path / "records.jsonl"
    lm = make_lm(tiny_checkpoints["llava_onevision"], record_path=str(record_path))
    real = make_request(lm, str(sample_video), "What is shown?", {"max_new_tokens": 4}, doc_id=0, metadata={"lvu_num_frames": 4})
    pad = make_request(lm, str(sample_video), "What is shown?", {"max_new_tokens": 4}, doc_id=1,
                       metadata={"lvu_num_frames": 8, "__padding_only__": True})
    calls = []
    generate = lm.model.generate
    lm.model.generate = lambda *a, **k: calls.append(1) or generate(*a, **k)
    out = lm.generate_until([pad, real, pad])
    assert out[0] == out[2] == "" and isinstance(out[1], str)
    assert len(calls) == 1 and lm.video_cache.misses == 1  # one decode + encode, one generate: the real request's
    assert [r["doc_id"] for r in records(record_path)] == [0]  # padding is no document: no record
    ll = lm.loglikelihood([make_request(lm, str(sample_video), "Q", request_type="loglikelihood", continuation=" A", doc_id=2,
                                        metadata={"lvu_num_frames": 4, "__padding_only__": True})])
    assert ll == [(float("-inf"), False)] and lm.video_cache.misses == 1


def test_loglikelihood_under_video_sharding(tmp_path):
    """A multiple-choice task (one loglikelihood request per option) at 2 processes gives the
    1-process run's scores, request by request, with the same reuse. lmms-eval 0.7.3 cannot
    score such a task for any model (its unwrap_generation_output turns the (logprob, greedy)
    pair into a string before process_results), so the scores are read from the resume
    journal, keyed by request (type, task, doc, option, prompt, model args)."""
    task = "lvu_test_videos_mc"
    docs = videomme_docs(tmp_path, [3, 3])
    env = offline_env(tmp_path, LVU_EXT_TEST_DOCS=str(docs), LVU_EXT_CACHE=str(tmp_path / "lvu_cache"))
    outs = {1: tmp_path / "one", 2: tmp_path / "two"}
    run_cli(cli_args(outs[1], task, resume_journal=tmp_path / "j1"), env)
    run_cli(cli_args(outs[2], task, shard="video", resume_journal=tmp_path / "j2"), dict(env, ACCELERATE_USE_CPU="1"),
            launcher=launcher(2, 29547))

    def scores(journal: Path) -> dict:
        return {e["key"]: e["response"] for path in journal.glob("lvu_ext_journal_rank*.jsonl") for e in records(path)}

    one, two = scores(tmp_path / "j1"), scores(tmp_path / "j2")
    assert one.keys() == two.keys() and len(one) == 12  # 6 docs x 2 options
    for key, (logprob, greedy) in one.items():
        assert two[key][0] == pytest.approx(logprob, abs=1e-4) and two[key][1] == greedy
    assert len({round(lp, 3) for lp, _ in one.values()}) >= 3  # scores differ, so a mix-up would show
    recs = all_records(outs[2])
    assert len(recs) == 12 and all(r["request"] == "loglikelihood" for r in recs)
    assert hits(recs) == hits(records(outs[1] / "lvu_ext_requests.jsonl")) == (10, 10)
    for v in range(2):
        assert len({r["process"] for r in recs if r["doc_id"] // 3 == v}) == 1
