"""Bad input, the rest of the way, through the real lmms-eval CLI on the tiny checkpoint
and generated videos: model args that used to do nothing or pass silently, frame
overrides that used to blame good videos, a file cut short at a packet boundary, a
checkpoint whose video processor resamples, generation kwargs lvu_ext does not use, and
two runs into one output folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

from cli_runner import TASKS, offline_env, records, run_cli, samples
from conftest import write_video
from video_fixtures import TASK, TASK_DIR, write_docs, write_vfr_video

FRAMES = 4


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """Two good 8 s clips (10 fps) and the environment of the test task over them."""
    root = tmp_path_factory.mktemp("bad_input")
    videos = [str(write_video(root / f"long{i}.mp4", n_frames=80, seed=20 + i)) for i in range(2)]
    docs = write_docs(root / "docs.json", [(f"clip{i}", v) for i, v in enumerate(videos)])
    env = offline_env(root, LVU_EXT_TEST_DOCS=str(docs), LVU_EXT_CACHE=str(root / "lvu_cache"))
    return root, env


def lmms_eval(out, env, model_args="", tasks=TASK, extra=(), check_rc=True):
    args = ["--model", "lvu_ext", "--model_args", f"pretrained=tiny-random-onevision{model_args}", "--tasks", tasks,
            "--include_path", str(TASK_DIR), "--output_path", str(out), "--log_samples", *extra]
    return run_cli(args, env, check_rc=check_rc)


def stopped_before_loading(proc, out) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Loading weights" not in proc.stderr + proc.stdout
    assert not list(out.rglob("*_results.json"))
    return proc.stderr.strip().splitlines()[-1]


def test_case1_fps_and_max_frames_as_model_args(good, tmp_path):
    _, env = good
    out = tmp_path / "out"
    lmms_eval(out, env, ",fps=1,max_frames=4")
    recs = records(out / "lvu_ext_requests.jsonl")
    assert [(r["frame_plan"], r["frames_sampled"]) for r in recs] == [("1 fps (max 4)", 4)] * 2
    # and fps alone: one frame a second of the 8 s clips
    lmms_eval(tmp_path / "fps", env, ",fps=0.5")
    assert [(r["frame_plan"], r["frames_sampled"]) for r in records(tmp_path / "fps" / "lvu_ext_requests.jsonl")] == [("0.5 fps", 4)] * 2


@pytest.mark.parametrize("model_args,fragment", [
    (",visual_window=0", "model arg visual_window=0 is impossible"),                       # case 2
    (",num_frames=8,num_frames=16", "model arg(s) given more than once: num_frames"),         # case 10
    (",max_frames=8", "model arg max_frames=8 is impossible; allowed: none unless fps is set"),
    ("_missing", None),                                                                     # case 12, below
])
def test_cases_2_10_model_args_stop_before_loading(good, tmp_path, model_args, fragment):
    _, env = good
    out = tmp_path / "out"
    if fragment is None:  # case 12: a local folder that is not there
        args = ["--model", "lvu_ext", "--model_args", "pretrained=/nonexistent/path/ckpt", "--tasks", TASK,
                "--include_path", str(TASK_DIR), "--output_path", str(out)]
        last = stopped_before_loading(run_cli(args, env, check_rc=False), out)
        assert "pretrained='/nonexistent/path/ckpt': the local folder /nonexistent/path/ckpt does not exist" in last, last
        return
    last = stopped_before_loading(lmms_eval(out, env, model_args, check_rc=False), out)
    assert fragment in last, last


def test_case11_device_cuda_without_cuda(good, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _, env = good
    out = tmp_path / "out"
    last = stopped_before_loading(lmms_eval(out, env, ",device=cuda", check_rc=False), out)
    assert "model arg device='cuda' is impossible; allowed: cpu (torch sees no CUDA device" in last, last


@pytest.mark.parametrize("gen_kwargs,fragment", [
    ("num_frames=0", "--gen_kwargs num_frames=0 is impossible; allowed: an integer >= 1"),
    ("num_frames=-3", "--gen_kwargs num_frames=-3 is impossible"),
    ("fps=0", "--gen_kwargs fps=0 is impossible; allowed: a number > 0"),
    ("temperature=-1", "--gen_kwargs temperature=-1 is impossible; allowed: a number >= 0"),  # case 9
])
def test_case3_impossible_frame_overrides_stop_before_any_request(good, tmp_path, gen_kwargs, fragment):
    _, env = good
    out = tmp_path / "out"
    proc = lmms_eval(out, env, f",num_frames={FRAMES}", extra=("--gen_kwargs", gen_kwargs), check_rc=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"lvu_ext: {TASK} doc 0: ") and fragment in last, last
    assert "before any request was answered" in last
    assert not (out / "lvu_ext_requests.jsonl").exists() or not records(out / "lvu_ext_requests.jsonl")


def test_case3_impossible_frame_count_in_task_metadata(good, tmp_path):
    _, env = good
    out = tmp_path / "out"
    proc = lmms_eval(out, env, tasks="lvu_test_bad_frames", check_rc=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "lvu_test_bad_frames doc 0: task metadata lvu_num_frames=0 is impossible" in last, last


def write_cut_at_packet(src, dst, keep: int):
    """`src` cut right after packet `keep - 1`: the first `keep` frames decode cleanly, the
    container still lists them all (moov at the front, so the tables survive the cut)."""
    import av

    with av.open(str(src)) as container:
        positions = [p.pos for p in container.demux(container.streams.video[0]) if p.size]
    dst.write_bytes(src.read_bytes()[: positions[keep]])
    return dst


def write_faststart(path, n_frames=60):
    import av
    import numpy as np

    rng = np.random.default_rng(5)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(n_frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_case4_a_file_cut_short_is_not_answered_as_intact(tmp_path):
    whole = write_faststart(tmp_path / "whole.mp4")
    cut = write_cut_at_packet(whole, tmp_path / "cut.mp4", keep=54)
    vfr = write_vfr_video(tmp_path / "vfr.mp4")  # short of frames by design: answered
    docs = write_docs(tmp_path / "docs.json", [("whole", str(whole)), ("cut", str(cut)), ("vfr", str(vfr))])
    env = offline_env(tmp_path, LVU_EXT_TEST_DOCS=str(docs), LVU_EXT_CACHE=str(tmp_path / "lvu_cache"))
    out = tmp_path / "out"
    lmms_eval(out, env, f",num_frames={FRAMES}")
    recs = {r["doc_id"]: r for r in records(out / "lvu_ext_requests.jsonl")}
    assert recs[0]["status"] == "ok" and recs[2]["status"] == "ok"
    assert recs[1]["status"] == "failed" and "lists 60 frames but only 54 decode" in recs[1]["error"], recs[1]


def test_case5_checkpoint_whose_processor_samples_frames(tiny_checkpoints, good, tmp_path):
    root, env = good
    plain = tiny_checkpoints["llava_onevision"]
    sampling = tmp_path / "sampling"
    shutil.copytree(plain, sampling)
    # transformers 5 nests the video processor in processor_config.json (older conversions:
    # video_preprocessor_config.json); either way the processor then samples 8 frames itself
    config_file = sampling / "processor_config.json"
    config = json.loads(config_file.read_text())
    config["video_processor"].update(do_sample_frames=True, num_frames=8)
    config_file.write_text(json.dumps(config))
    answers = {}
    for name, ckpt in (("plain", plain), ("sampling", sampling)):
        out = tmp_path / name
        run_cli(["--model", "lvu_ext", "--model_args", f"pretrained={ckpt},num_frames=16,vision_batch=16", "--tasks", TASK,
                 "--include_path", str(TASK_DIR), "--output_path", str(out), "--log_samples"], env)
        answers[name] = {r["doc_id"]: r["filtered_resps"] for r in samples(out, TASK)}
        assert [r["frames_sampled"] for r in records(out / "lvu_ext_requests.jsonl")] == [16, 16]
    assert answers["sampling"] == answers["plain"] and len(answers["plain"]) == 2


def test_case9_unused_generation_kwargs_are_named(good, tmp_path):
    _, env = good
    out = tmp_path / "out"
    proc = lmms_eval(out, env, f",num_frames={FRAMES}", extra=("--gen_kwargs", "max_new_token=64,foo=1"))
    log = proc.stdout + proc.stderr
    for key in ("max_new_token", "foo"):
        warnings = [line for line in log.splitlines() if f"generation kwarg {key}=" in line and "is not used" in line]
        assert len(warnings) == 1, log[-3000:]  # once per task and key, not once per request
    assert len(samples(out, TASK)) == 2


def test_case8_two_runs_into_one_folder(good, tmp_path):
    root, env = good
    out = tmp_path / "shared"
    args = ["--model", "lvu_ext", "--model_args", f"pretrained=tiny-random-onevision,num_frames={FRAMES}", "--tasks", TASK,
            "--include_path", str(TASK_DIR), "--output_path", str(out), "--log_samples"]
    # the first run has 40 documents at 16 frames and no reuse, so it is still answering while
    # the second starts (about 10 s to import lmms-eval and build the model)
    videos = [d["video"] for d in json.loads((root / "docs.json").read_text())]
    many = write_docs(tmp_path / "many.json", [(f"q{i}", videos[i % 2]) for i in range(40)])
    slow = ",".join(["pretrained=tiny-random-onevision", "num_frames=16", "video_cache=0", "prefix_cache=false", "prefetch=0"])
    cmd = [sys.executable, "-m", "lmms_eval", *[slow if a.startswith("pretrained=") else a for a in args]]
    first_log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(cmd, env=dict(env, LVU_EXT_TEST_DOCS=str(many)), stdout=first_log, stderr=subprocess.STDOUT,
                             cwd=str(TASKS.parent))
    time.sleep(2)  # both start within seconds: each holds the folder from its model build to its end
    second = run_cli(args, env)
    assert first.wait(timeout=300) == 0
    first_log.close()
    logs = [(tmp_path / "first.log").read_text(), second.stderr + second.stdout]
    warned = [log for log in logs if "another live run" in log]
    assert len(warned) == 1, "exactly the run that came second is warned"
    assert "to the second" in warned[0] and "Give each run its own --output_path" in warned[0]

    manifests = sorted(out.glob("lvu_ext_run*.json"))
    assert len(manifests) == 2, manifests
    run_ids = {json.loads(m.read_text())["run_id"]: m for m in manifests}
    assert len(run_ids) == 2
    recs = records(out / "lvu_ext_requests.jsonl")
    sizes = []
    for run_id, manifest in run_ids.items():  # each run: all its docs, each record pointing at its own manifest
        mine = [r for r in recs if r["run_id"] == run_id]
        sizes.append(len(mine))
        assert sorted(r["doc_id"] for r in mine) == list(range(len(mine))) and {r["run_manifest"] for r in mine} == {str(manifest)}
    assert sorted(sizes) == [2, 40]


def test_case8_a_resumed_run_is_told_from_the_killed_one(good, tmp_path):
    from lmms_eval_plugin.bookkeeping.journal import STOP_AFTER_ENV

    _, env = good
    out, cache = tmp_path / "same_folder", tmp_path / "cache"
    killed = lmms_eval(out, dict(env, **{STOP_AFTER_ENV: "1"}), f",num_frames={FRAMES}", extra=("--use_cache", str(cache)),
                       check_rc=False)
    assert killed.returncode == 86, killed.stderr[-2000:]
    lmms_eval(out, env, f",num_frames={FRAMES}", extra=("--use_cache", str(cache)))
    recs = records(out / "lvu_ext_requests.jsonl")  # both runs appended here
    by_run: dict[str, list] = {}
    for r in recs:
        by_run.setdefault(r["run_id"], []).append(r)
    assert len(by_run) == 2
    first, second = sorted(by_run.values(), key=len)
    assert [(r["doc_id"], r.get("from_journal", False)) for r in first] == [(0, False)]  # the killed run's one answer
    assert sorted((r["doc_id"], r.get("from_journal", False)) for r in second) == [(0, True), (1, False)]
    assert len(list(out.glob("lvu_ext_run*.json"))) == 2  # each run kept its own manifest
