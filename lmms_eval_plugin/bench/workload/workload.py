"""`lvu-ext bench --workload`: a whole (small) benchmark, not one request.

K synthetic videos x Q questions each, through the real lmms-eval CLI on a local task,
one fresh lmms-eval process per case, all on the same OneVision-architecture checkpoint
and the same frame count:

  llava_hf             lmms-eval's built-in llava_hf (--force_simple, max_frames_num=N)
  off_reuse_off        lvu_ext, method off (rope_ext=none,pooling=native), every reuse off
  off_reuse_on         lvu_ext, method off, reuse on (video cache, prefix cache, prefetch)
  default_reuse_off    lvu_ext defaults (vcwe + progressive pooling), every reuse off
  default_reuse_on     lvu_ext defaults, reuse on
  shard_harness        lvu_ext defaults, shard=harness (each process answers lmms-eval's own deal)
  shard_video          lvu_ext defaults, shard=video (all questions of a video on one process)
  workers_off          lvu_ext defaults, decode_workers=0,prefetch=0 (each video decoded when asked, in a killable process)
  workers_default      lvu_ext defaults (decode_workers=auto: on a GPU worker processes decode and preprocess ahead; on the CPU decode-only processes decode ahead)

`--clips realistic` makes the videos long 1280x720 H.264 High clips (x264 veryfast,
B-frames, a keyframe every 5 s; `--clip-seconds`), so that decoding rather than the model
dominates, as on a GPU: the decode-bound layout for the workers_* cases.

`--processes N` runs every case under `accelerate launch` with N CPU processes
(ACCELERATE_USE_CPU=1), as leaderboard runs use several processes per node; `--layout
videomme` lists a video's questions consecutively, as Video-MME does (lmms-eval's
round-robin deal then puts them on different processes).

Figures per case: time in lmms-eval's `evaluate` (every request from building it to its
score; model loading excluded) per question and per hour, the whole process's wall time,
peak RSS of the process, and whether the answers equal those they must equal. Writes
workload.json, workload.md and workload.png to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

LLAVA_HF = "llava_hf"
REUSE_OFF = {"video_cache": 0, "prefix_cache": "false", "prefetch": 0}
REUSE_ON: dict = {}  # the defaults: video_cache=1, prefix_cache=true, decode_workers=auto, prefetch=auto
METHOD_OFF = {"rope_ext": "none", "pooling": "native"}
# case -> lvu_ext model args (None: lmms-eval's llava_hf)
CASES = {
    LLAVA_HF: None,
    "off_reuse_off": {**METHOD_OFF, **REUSE_OFF},
    "off_reuse_on": {**METHOD_OFF, **REUSE_ON},
    "default_reuse_off": dict(REUSE_OFF),
    "default_reuse_on": dict(REUSE_ON),
}
# data parallel (--processes N): lvu_ext defaults, lmms-eval's deal against video-affine sharding
SHARD_CASES = {"shard_harness": {"shard": "harness"}, "shard_video": {"shard": "video"}}
# decode-bound (--clips realistic): the frames pipeline in the main process against worker processes
DECODE_CASES = {"workers_off": {"decode_workers": 0, "prefetch": 0}, "workers_default": {}}  # the defaults, as a user runs them
ALL_CASES = {**CASES, **SHARD_CASES, **DECODE_CASES}
DESCRIPTION = {
    LLAVA_HF: "lmms-eval's llava_hf (--force_simple), max_frames_num=N",
    "off_reuse_off": "lvu_ext rope_ext=none,pooling=native, video_cache=0,prefix_cache=false,prefetch=0",
    "off_reuse_on": "lvu_ext rope_ext=none,pooling=native, reuse defaults (video_cache=1,prefix_cache=true,decode_workers=auto)",
    "default_reuse_off": "lvu_ext defaults (vcwe + progressive), video_cache=0,prefix_cache=false,prefetch=0",
    "default_reuse_on": "lvu_ext defaults (vcwe + progressive; video_cache=1,prefix_cache=true,decode_workers=auto)",
    "shard_harness": "lvu_ext defaults, shard=harness (each process answers the documents lmms-eval dealt it)",
    "shard_video": "lvu_ext defaults, shard=video (the processes agree who answers which video)",
    "workers_off": "lvu_ext defaults but decode_workers=0,prefetch=0 (each video decoded when asked, in a separate killable process; preprocessing in the main process)",
    "workers_default": "lvu_ext defaults (decode_workers=auto, prefetch=auto: on a GPU worker processes decode and preprocess ahead; on the CPU "
                       "decode-only processes decode ahead and the processor runs with the model)",
}
# pairs whose answers must be equal (reuse is exact), and the peer a user compares with
MUST_EQUAL = (("off_reuse_on", "off_reuse_off"), ("default_reuse_on", "default_reuse_off"), ("shard_video", "shard_harness"),
              ("workers_default", "workers_off"))
LAYOUTS = ("question-major", "videomme")
PORT = 29611  # accelerate's rendezvous port for --processes > 1
TASK = "lvu_workload"
# llava_hf renders `[{"role": "user", "content": "<video>\n<question>"}]` with the tokenizer's chat
# template. The llava-hf OneVision template reads list content (`selectattr('type', ...)`), so
# it drops a plain-string message and the processor then finds 0 <video> tokens. llava_hf's own
# `chat_template` model arg fixes that with Qwen2's ChatML for string content, which renders
# exactly the prompt lvu_ext builds (no comma inside, as lmms-eval splits model args on commas).
CHATML_STRING_CONTENT = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                         "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
QUESTIONS = [
    ("What is the colour of the moving block?", ["A. red", "B. green", "C. blue", "D. white"], "A"),
    ("In which direction does the block move?", ["A. left", "B. right", "C. up", "D. down"], "B"),
    ("How many blocks are in the video?", ["A. one", "B. two", "C. three", "D. four"], "A"),
    ("What is in the background?", ["A. noise", "B. a wall", "C. the sky", "D. water"], "A"),
]


def build_parser() -> argparse.ArgumentParser:
    from lmms_eval_plugin.bench import archs

    p = argparse.ArgumentParser(prog="lvu-ext bench --workload", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=3, help="K synthetic videos (default 3)")
    p.add_argument("--questions", type=int, default=3, help=f"Q questions per video (default 3, at most {len(QUESTIONS)})")
    p.add_argument("--frames", type=int, default=64, help="frames per video, every case (default 64)")
    # CPU only: random weights are saved with save_pretrained, which is not workable for the 7B architecture
    p.add_argument("--arch", choices=(archs.TINY, "cpu-mid"), default="cpu-mid", help="checkpoint architecture (default cpu-mid)")
    p.add_argument("--pretrained", default=None, help="use this checkpoint folder instead of a random --arch model")
    p.add_argument("--cases", default=",".join(CASES), help=f"subset of {','.join(ALL_CASES)} (default {','.join(CASES)})")
    p.add_argument("--processes", type=int, default=1, help="lmms-eval processes per case (accelerate launch on CPU when > 1)")
    p.add_argument("--layout", choices=LAYOUTS, default="question-major",
                   help="document order: question-major (default) or videomme (a video's questions consecutive)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="device of every case's model (default cpu)")
    p.add_argument("--max-new-tokens", type=int, default=8)
    p.add_argument("--video-frames", type=int, default=None, help="length of each synthetic clip (default: 2 x --frames)")
    p.add_argument("--clips", choices=("synthetic", "realistic"), default="synthetic",
                   help="synthetic: small 640x360 clips (default); realistic: long 1280x720 H.264 High clips (decode-bound)")
    p.add_argument("--clip-seconds", type=int, default=180, help="--clips realistic: seconds of the first clip (+10 s per further clip)")
    p.add_argument("--extra-lvu-args", default="", help="model args added to every lvu_ext case (e.g. prefill_chunk=2048)")
    p.add_argument("--out", default="bench_workload_out")
    p.add_argument("--work-dir", default=None, help="checkpoint, videos, task, logs (default: $LVU_EXT_CACHE/bench)")
    p.add_argument("--case-timeout-s", type=float, default=3600)
    return p


def _write_task(work: Path, videos: list[Path], questions: int, max_new_tokens: int, layout: str) -> tuple[Path, Path]:
    """(task folder for --include_path, docs JSON): one doc per (video, question)."""
    task_dir = work / "workload_task"
    task_dir.mkdir(parents=True, exist_ok=True)
    (task_dir / "workload_task_shim.py").write_text("from lmms_eval_plugin.bench.workload.workload_task import *  # noqa: F401,F403\n")
    (task_dir / f"{TASK}.yaml").write_text(f"""task: {TASK}
class: !function workload_task_shim.WorkloadTask
dataset_path: {TASK}_generated
test_split: test
output_type: generate_until
doc_to_visual: !function workload_task_shim.doc_to_visual
doc_to_text: !function workload_task_shim.doc_to_text
doc_to_target: answer
process_results: !function workload_task_shim.process_results
generation_kwargs:
  max_new_tokens: {max_new_tokens}
  temperature: 0
  do_sample: false
metric_list:
  - metric: accuracy
    aggregation: mean
    higher_is_better: true
metadata:
  version: 0.1
""")
    # Question-major, as a harness that sorts by question would hand them over: the
    # questions of one video are NOT adjacent in the input. Video-MME's own order: they are.
    pairs = [(q, v) for q in range(questions) for v in range(len(videos))]
    if layout == "videomme":
        pairs = [(q, v) for v in range(len(videos)) for q in range(questions)]
    docs = []
    for q, v in pairs:
        question, options, answer = QUESTIONS[q]
        docs.append({"doc_id": len(docs), "videoID": f"clip{v}", "video": str(videos[v]), "question": question,
                     "options": options, "answer": answer})
    docs_path = work / "workload_docs.json"
    docs_path.write_text(json.dumps(docs, indent=1))
    return task_dir, docs_path


def _videos(work: Path, k: int, n_frames: int) -> list[Path]:
    from lmms_eval_plugin.bench.clip import ensure_clip

    # different lengths, so each video is its own file with its own frames
    return [ensure_clip(work / f"workload_clip{i}_{n_frames + 7 * i}f.mp4", n_frames + 7 * i) for i in range(k)]


def _realistic_spec(i: int, seconds: int):
    from lmms_eval_plugin.bench.realistic_clip import ClipSpec

    return ClipSpec(f"workload_{i}_{seconds + 10 * i}s_720p", 1280, 720, seconds + 10 * i, preset="veryfast", keyframe_s=5)


def _realistic_videos(work: Path, k: int, seconds: int) -> list[Path]:
    from lmms_eval_plugin.bench.realistic_clip import ensure_realistic_clip

    return [ensure_realistic_clip(work / "realistic_clips", _realistic_spec(i, seconds)) for i in range(k)]


def _command(case: str, model_dir: Path, frames: int, task_dir: Path, out: Path, extra: str, processes: int = 1,
             device: str = "cpu") -> list[str]:
    if ALL_CASES[case] is None:
        model = LLAVA_HF
        args = (f"pretrained={model_dir},device={device},device_map={device},dtype=float32,max_frames_num={frames},"
                f"chat_template={CHATML_STRING_CONTENT}")
        flags = ["--force_simple"]
    else:
        settings = {"pretrained": str(model_dir), "device": device, "dtype": "float32", "num_frames": frames,
                    "resume_journal": "off", **ALL_CASES[case]}
        model, args, flags = "lvu_ext", ",".join(f"{k}={v}" for k, v in settings.items()), []
        if extra:
            args += "," + extra
    launch = [sys.executable, "-m", "lmms_eval_plugin.bench.workload.workload_launch"]
    if processes > 1:  # CPU processes: ACCELERATE_USE_CPU=1 in the environment
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
                  "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(PORT),
                  "-m", "lmms_eval_plugin.bench.workload.workload_launch"]
    return [*launch, "--model", model, "--model_args", args,
            "--tasks", TASK, "--include_path", str(task_dir), "--batch_size", "1", "--output_path", str(out),
            "--log_samples", *flags]


def _run_case(case: str, cmd: list[str], env: dict, log: Path, timing: Path, timeout_s: float) -> dict:
    """One lmms-eval process: wall time, peak RSS (the child's own ru_maxrss, from wait4)."""
    start = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        deadline = start + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.2)
    wall = time.monotonic() - start
    rc = os.waitstatus_to_exitcode(status)
    row = {"case": case, "status": "ok" if rc == 0 else ("timeout" if wall > timeout_s else "error"), "exit_code": rc,
           "wall_s": round(wall, 2), "peak_mem_gb": usage.ru_maxrss * 1024 / 1e9, "evaluate_s": None}
    timings = sorted(timing.parent.glob(timing.name + "*"))  # one per process: the slowest is the run's
    if timings:
        row["evaluate_s"] = max(json.loads(path.read_text())["evaluate_s"] for path in timings)
    if rc != 0:
        row["error"] = "\n".join(log.read_text(errors="replace").splitlines()[-15:])[-1500:]
    return row


def _answers(out: Path) -> dict[int, str]:
    files = sorted(out.rglob(f"*_samples_{TASK}.jsonl"))
    if not files:
        return {}
    rows = [json.loads(line) for line in files[-1].read_text().splitlines() if line.strip()]
    return {r["doc_id"]: (r["filtered_resps"][0] if isinstance(r["filtered_resps"], list) else r["filtered_resps"]) for r in rows}


def _reuse_counts(out: Path) -> dict | None:
    files = sorted(out.rglob("lvu_ext_requests*.jsonl"))
    if not files:
        return None
    recs = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    ok = [r for r in recs if r.get("status") == "ok"]
    return {"requests": len(ok), "video_cache_hits": sum(bool(r.get("video_cache_hit")) for r in ok),
            "prefix_cache_hits": sum(bool(r.get("prefix_cache_hit")) for r in ok),
            "visual_tokens": sorted({r.get("visual_tokens") for r in ok}), "frames_sampled": sorted({r.get("frames_sampled") for r in ok})}


def run(ns, argv) -> int:
    from lmms_eval_plugin.bench import archs
    from lmms_eval_plugin.bench.machine import machine_info
    from lmms_eval_plugin.bench.workload.workload_launch import TIMING_ENV
    from lmms_eval_plugin.bench.workload.workload_output import evaluate_goals, write_outputs
    from lmms_eval_plugin.bench.workload.workload_task import DOCS_ENV
    from lmms_eval_plugin.checkpoints.tiny_models import cache_root

    cases = [c.strip() for c in ns.cases.split(",") if c.strip()]
    bad = [c for c in cases if c not in ALL_CASES]
    if bad or not cases or not 1 <= ns.questions <= len(QUESTIONS) or ns.videos < 1 or ns.processes < 1:
        print(f"--cases from {', '.join(ALL_CASES)}; --questions 1..{len(QUESTIONS)}; --videos >= 1; --processes >= 1 "
              f"(got {bad or cases})", file=sys.stderr)
        return 2
    work = Path(ns.work_dir) if ns.work_dir else cache_root() / "bench"
    work.mkdir(parents=True, exist_ok=True)
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    if ns.pretrained:
        model_dir = Path(ns.pretrained)
    elif ns.arch == archs.TINY:
        model_dir = archs.save_checkpoint(archs.TINY, work / "tiny")
    else:
        model_dir = archs.save_checkpoint(ns.arch, work / archs.arch_tag(ns.arch, archs.ARCHS[ns.arch]))
    if ns.clips == "realistic":
        videos = _realistic_videos(work, ns.videos, ns.clip_seconds)
        clip_note = f"{ns.videos} realistic clips: " + _realistic_spec(0, ns.clip_seconds).describe() + " (+10 s per further clip)"
    else:
        videos = _videos(work, ns.videos, ns.video_frames or 2 * ns.frames)
        clip_note = f"{ns.videos} synthetic 640x360 clips of {ns.video_frames or 2 * ns.frames}+7k frames"
    task_dir, docs = _write_task(work, videos, ns.questions, ns.max_new_tokens, ns.layout)
    runs = work / "workload_runs"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **{DOCS_ENV: str(docs)})
    if ns.processes > 1:
        env["ACCELERATE_USE_CPU"] = "1"

    rows, answers, start = [], {}, time.monotonic()
    for case in cases:
        case_out = runs / case
        if case_out.exists():
            import shutil

            shutil.rmtree(case_out)
        case_out.mkdir(parents=True)
        timing = case_out / "timing.json"
        cmd = _command(case, model_dir, ns.frames, task_dir, case_out / "lmms_eval", ns.extra_lvu_args, ns.processes, ns.device)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # a shared CPU makes timings noisy: say how busy
        row = _run_case(case, cmd, dict(env, **{TIMING_ENV: str(timing)}), case_out / "log.txt", timing, ns.case_timeout_s)
        row["load_avg_at_start"] = load
        answers[case] = _answers(case_out / "lmms_eval")
        row.update(questions=len(answers[case]), reuse=_reuse_counts(case_out / "lmms_eval"),
                   command=" ".join(cmd[3:] if ns.processes == 1 else cmd[2:]))
        n = ns.videos * ns.questions
        if row["status"] == "ok" and len(answers[case]) != n:  # lmms-eval exits 0 even when evaluation raised
            row.update(status="error", error=f"{len(answers[case])} of {n} answers logged; see {case_out / 'log.txt'}")
        if row["evaluate_s"]:
            row["s_per_question"] = row["evaluate_s"] / n
            row["questions_per_hour"] = 3600.0 / row["s_per_question"]
        rows.append(row)
        print(f"[workload] {case:>18}: {row['status']}, evaluate {row['evaluate_s'] or 0:.1f} s "
              f"({row.get('s_per_question', 0):.2f} s/question), wall {row['wall_s']:.1f} s, peak {row['peak_mem_gb']:.2f} GB",
              file=sys.stderr, flush=True)

    for a, b in MUST_EQUAL + (("off_reuse_off", LLAVA_HF),):
        if answers.get(a) and answers.get(b):
            next(r for r in rows if r["case"] == a)[f"same_answers_as_{b}"] = answers[a] == answers[b]
    config = __import__("transformers").AutoConfig.from_pretrained(model_dir)
    report = {
        "machine": machine_info(ns.device),
        "model": {"arch": "checkpoint" if ns.pretrained else ns.arch, "parameters": archs.parameter_counts(config), "dir": str(model_dir),
                  "note": f"checkpoint {model_dir}" if ns.pretrained else (
                      "embedded tiny-random-onevision (pipeline check only)" if ns.arch == archs.TINY else archs.ARCHS[ns.arch].note)},
        "settings": {"videos": ns.videos, "questions_per_video": ns.questions, "frames": ns.frames,
                     "video": clip_note,
                     "max_new_tokens": ns.max_new_tokens, "dtype": "float32", "device": ns.device, "extra_lvu_args": ns.extra_lvu_args,
                     "order": ("Video-MME's (the questions of one video consecutive)" if ns.layout == "videomme" else
                               "question-major (the questions of one video are not adjacent in the task)"),
                     "processes": ns.processes,
                     "wall_s": round(time.monotonic() - start, 1)},
        "command": "lvu-ext bench --workload " + " ".join(argv),
        "cases": {c: DESCRIPTION[c] for c in cases},
        "rows": rows,
        "answers": answers,
    }
    report["goals"] = evaluate_goals(report)
    for path in write_outputs(report, out):
        print(f"wrote {path}", file=sys.stderr)
    return 1 if any(r["status"] != "ok" for r in rows) else 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run(build_parser().parse_args(argv), argv)


if __name__ == "__main__":
    sys.exit(main())
