"""Broken videos through the real lmms-eval CLI: by default each costs only its own
document (recorded as failed, empty answer, scored as wrong, summarised at the end);
with on_video_error=raise the process stops at the first one with a non-zero status."""

import pytest

from cli_runner import offline_env, records, results_file, run_cli, samples
from video_fixtures import TASK, TASK_DIR, make_videos, write_docs

# doc order = doc ids; the first broken doc is doc 1, so the raise run stops early
KINDS = ["good", "missing", "harness_exit", "corrupt", "truncated", "no_frames", "short", "short", "vfr", "odd_size", "good2"]
BROKEN = {"missing": "video file not found", "harness_exit": "could not locate the video",
          "corrupt": "unreadable or corrupt video", "truncated": "unreadable or corrupt video",
          "no_frames": "no decodable video frames"}
FRAMES = 8


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_videos")
    videos = make_videos(root / "videos")
    docs = write_docs(root / "docs.json", [(kind, videos[kind]) for kind in KINDS])
    env = offline_env(root, LVU_EXT_TEST_DOCS=str(docs), LVU_EXT_CACHE=str(root / "lvu_cache"))
    return root, videos, env


def cli(out, env, extra_model_args="", check_rc=True):
    args = ["--model", "lvu_ext", "--model_args", f"pretrained=tiny-random-onevision,num_frames={FRAMES}{extra_model_args}",
            "--tasks", TASK, "--include_path", str(TASK_DIR), "--output_path", str(out), "--log_samples"]
    return run_cli(args, env, check_rc=check_rc)


def test_broken_videos_cost_only_their_documents(setup, tmp_path):
    _, videos, env = setup
    out = tmp_path / "out"
    proc = cli(out, env)
    log = proc.stdout + proc.stderr

    rows = {r["doc_id"]: r for r in samples(out, TASK)}
    assert sorted(rows) == list(range(len(KINDS)))
    recs = {r["doc_id"]: r for r in records(out / "lvu_ext_requests.jsonl")}
    assert sorted(recs) == list(range(len(KINDS)))
    failed = []
    for doc_id, kind in enumerate(KINDS):
        rec, row = recs[doc_id], rows[doc_id]
        if kind in BROKEN:
            failed.append(doc_id)
            assert rec["status"] == "failed" and BROKEN[kind] in rec["error"], rec
            assert videos[kind] in rec["video"], rec  # the path, even when the task's own helper reported it
            assert row["filtered_resps"] == "" and row["accuracy"] == 0.0
            assert f"lvu_ext: {TASK} doc {doc_id}: " in log and "recorded as failed" in log
        else:
            assert rec["status"] == "ok" and rec["video"] == videos[kind], rec
            assert row["filtered_resps"] != ""  # answered by the model
    # fewer frames than requested: all that exist, said once, recorded per request
    for doc_id in (6, 7):
        assert (recs[doc_id]["frames_requested"], recs[doc_id]["frames_sampled"], recs[doc_id]["video_total_frames"]) == (FRAMES, 3, 3)
    assert log.count(f"fewer than the {FRAMES} requested") == 1
    # VFR: sampled by index over the decoded frames; odd size decodes
    assert recs[8]["frames_sampled"] == FRAMES and recs[8]["video_total_frames"] == 16
    assert recs[9]["frames_sampled"] == FRAMES and recs[9]["video_total_frames"] == 12
    # the summary at the end: count and first doc ids
    first = ", ".join(f"{TASK}#{d}" for d in failed[:5])
    assert f"lvu_ext: {len(failed)} document(s) failed on their video (first: {first})" in log
    # the harness scored the empty answers as wrong, with the rest
    accuracy = results_file(out)["results"][TASK]["accuracy,none"]
    assert accuracy == pytest.approx(sum(r["accuracy"] for r in rows.values()) / len(KINDS))


def test_on_video_error_raise_stops_with_nonzero_exit(setup, tmp_path):
    _, videos, env = setup
    out = tmp_path / "out"
    proc = cli(out, env, ",on_video_error=raise", check_rc=False)
    assert proc.returncode != 0, proc.stdout[-2000:]
    message = f"lvu_ext: {TASK} doc 1: video file not found: {videos['missing']} (on_video_error=raise stops the run)"
    assert message in proc.stderr, proc.stderr[-3000:]
    assert not list(out.rglob("*_results.json"))
    recs = records(out / "lvu_ext_requests.jsonl")
    assert [(r["doc_id"], r["status"]) for r in recs] == [(0, "ok"), (1, "failed")]  # stopped at the first
