"""The frame cache through the real lmms-eval CLI: under 3 processes writing into one cache
folder, cold then warm, the answers equal a 1-process run without the cache; a cache
filled ahead of time by `lvu-ext check-videos --fill-cache` (on CPU cores, no model) makes
the run decode nothing: every request is a hit."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from cli_runner import REPO, offline_env, records, run_cli, samples
from video_fixtures import TASK, TASK_DIR, write_docs, write_noise_video

COLOURS = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 0)]
FRAMES = "num_frames=6"


def _launcher(port: int) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "3", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port), "-m", "lmms_eval"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("frame_cache_cli")
    videos = [str(write_noise_video(root / f"v{i}.mp4", colour=c, n_frames=16)) for i, c in enumerate(COLOURS)]
    docs = write_docs(root / "docs.json", [("colour", v) for v in videos])
    env = offline_env(root, LVU_EXT_CACHE=str(root / "lvu_cache"), LVU_EXT_TEST_DOCS=str(docs), ACCELERATE_USE_CPU="1")
    plain = root / "plain"
    run_cli(_args(plain, ""), env)
    return root, env, _answers(plain)


def _args(out, extra: str) -> list[str]:
    model_args = ",".join(a for a in ("pretrained=tiny-random-onevision", FRAMES, extra) if a)
    return ["--model", "lvu_ext", "--model_args", model_args, "--tasks", TASK, "--include_path", str(TASK_DIR),
            "--log_samples", "--output_path", str(out)]


def _answers(out) -> dict:
    return {row["doc_id"]: row["filtered_resps"] for row in samples(out, TASK)}


def _states(out) -> list[str]:
    return sorted(r["frame_cache"] for path in out.rglob("lvu_ext_requests*.jsonl") for r in records(path))


@pytest.mark.parametrize("stage", ["decoded", "processed"])
def test_three_processes_share_one_cache_and_answer_as_without(setup, stage):
    """processed: the decode-only processes hand back frames, each main process resizes them
    and stores the result; the warm run reads them back resized."""
    root, env, plain = setup
    cache = root / f"shared_cache_{stage}"
    for run, expected in (("cold", {"stored"}), ("warm", {"hit"})):
        out = root / f"three_{stage}_{run}"
        port = 29571 + 2 * (stage == "processed") + (run == "warm")
        proc = run_cli(_args(out, f"frame_cache={cache},frame_cache_stage={stage}"), env, launcher=_launcher(port))
        assert _answers(out) == plain, run
        assert set(_states(out)) == expected and len(_states(out)) == len(COLOURS), run
        assert (_saved_s(proc) > 0) == (run == "warm"), run  # the node-wide line counts what the hits saved
    leftovers = [p.name for p in cache.rglob("*") if p.name.startswith((".tmp-", ".evict-"))]
    assert not leftovers
    shapes = {tuple(json.loads(p.read_text())["frame_shape"] or ()) for p in cache.glob("*/meta.json")}
    assert len(list(cache.glob("*/meta.json"))) == len(COLOURS)  # one entry per video, written by whichever process had it
    assert (shapes == {(54, 54, 3)}) == (stage == "processed")  # the tiny OneVision processor's size, or the video's own


def test_a_cache_filled_by_check_videos_makes_the_run_decode_nothing(setup):
    root, env, plain = setup
    cache, report = root / "filled_cache", root / "check"
    fill = subprocess.run([sys.executable, "-m", "lmms_eval_plugin.cli", "check-videos", "--tasks", TASK, "--include_path", str(TASK_DIR),
                           "--num-frames", "6", "--fill-cache", str(cache), "--out", str(report), "--workers", "2"],
                          env=env, cwd=str(REPO), capture_output=True, text=True, timeout=300)
    assert fill.returncode == 0, fill.stderr[-3000:]
    out = root / "after_fill"
    proc = run_cli(_args(out, f"frame_cache={cache}"), env)
    assert _answers(out) == plain
    assert _states(out) == ["hit"] * len(COLOURS)
    recorded = sum(json.loads(p.read_text())["decode_s"] for p in cache.rglob("decode_s_*.json"))  # the fill's decodes
    assert recorded > 0 and _saved_s(proc) == pytest.approx(recorded, abs=2e-3)  # one hit per video: all of them saved


def _saved_s(proc) -> float:
    """The seconds of decoding saved, from the run's reuse lines (the largest: the node's)."""
    found = re.findall(r"\(not decoded: ([0-9.]+) s of decoding saved", proc.stdout + proc.stderr)
    assert found, (proc.stderr[-3000:])
    return max(float(s) for s in found)
