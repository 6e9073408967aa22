"""`lvu-ext bench --workload` in a reduced form (tiny model, 2 videos x 2 questions, 4
frames, all five cases through the real lmms-eval CLI), so it cannot rot. No timing
assertions (CI machines vary); answers and reuse counts are checked."""

import json

from lmms_eval_plugin.bench.cli import main
from lmms_eval_plugin.bench.workload.workload import CASES


def test_workload_bench_tiny(tmp_path):
    out = tmp_path / "out"
    rc = main(["--workload", "--arch", "tiny", "--videos", "2", "--questions", "2", "--frames", "4", "--max-new-tokens", "4",
               "--out", str(out), "--work-dir", str(tmp_path / "work")])
    assert rc == 0
    assert {p.name for p in out.iterdir()} >= {"workload.json", "workload.md", "workload.png"}
    assert (out / "workload.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "workload.json").read_text())
    rows = {r["case"]: r for r in report["rows"]}
    assert list(rows) == list(CASES)
    for case, r in rows.items():
        assert r["status"] == "ok" and r["questions"] == 4, r
        assert r["evaluate_s"] > 0 and r["questions_per_hour"] > 0 and r["peak_mem_gb"] > 0
        if case == "llava_hf":
            continue
        hits = 2 if case.endswith("reuse_on") else 0  # 2 videos x (2 questions - the first)
        assert (r["reuse"]["video_cache_hits"], r["reuse"]["prefix_cache_hits"]) == (hits, hits), r["reuse"]
        assert r["reuse"]["frames_sampled"] == [4]
    assert rows["off_reuse_off"]["reuse"]["visual_tokens"] == [4 * 196 + 1]
    assert rows["default_reuse_on"]["reuse"]["visual_tokens"][0] < 4 * 196 + 1
    answers = report["answers"]
    # reuse is exact; and lmms-eval's own llava_hf, given the same prompt and frames, is an oracle for method off
    assert answers["off_reuse_on"] == answers["off_reuse_off"] == answers["llava_hf"]
    assert answers["default_reuse_on"] == answers["default_reuse_off"]
    statuses = {g["goal"]: g["status"] for g in report["goals"]}
    assert statuses["off_reuse_on answers == off_reuse_off answers (reuse is exact)"] == "met"
    assert statuses["default_reuse_on answers == default_reuse_off answers (reuse is exact)"] == "met"
    md = (out / "workload.md").read_text()
    assert "| default_reuse_on |" in md and "## Goals" in md and "GPU not measured" in md


def test_workload_bench_data_parallel_tiny(tmp_path):
    """`--processes 2 --layout videomme`: shard=video keeps the reuse that lmms-eval's deal
    loses, with the same answers (the reduced form of the data-parallel bench, for CI)."""
    out = tmp_path / "out"
    rc = main(["--workload", "--arch", "tiny", "--videos", "2", "--questions", "2", "--frames", "4", "--max-new-tokens", "4",
               "--processes", "2", "--layout", "videomme", "--cases", "shard_harness,shard_video",
               "--out", str(out), "--work-dir", str(tmp_path / "work")])
    assert rc == 0
    report = json.loads((out / "workload.json").read_text())
    rows = {r["case"]: r for r in report["rows"]}
    assert list(rows) == ["shard_harness", "shard_video"] and report["settings"]["processes"] == 2
    for r in rows.values():
        assert r["status"] == "ok" and r["questions"] == 4 and r["evaluate_s"] > 0, r
    # a video's two questions are consecutive docs, dealt to processes 0 and 1: no hit; sharded by video: one per video
    assert (rows["shard_harness"]["reuse"]["video_cache_hits"], rows["shard_harness"]["reuse"]["prefix_cache_hits"]) == (0, 0)
    assert (rows["shard_video"]["reuse"]["video_cache_hits"], rows["shard_video"]["reuse"]["prefix_cache_hits"]) == (2, 2)
    assert report["answers"]["shard_video"] == report["answers"]["shard_harness"]
    statuses = {g["goal"]: g["status"] for g in report["goals"]}
    assert statuses["shard_video answers == shard_harness answers (reuse is exact)"] == "met"
    assert "2 CPU processes (accelerate launch)" in (out / "workload.md").read_text()
