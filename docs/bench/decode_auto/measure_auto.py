"""What `decode_workers=auto` should pick with the model on the CPU: lmms-eval CLI runs side by
side in one process, on the same clips, the same tiny checkpoint, each case one fresh run.

  python docs/bench/decode_auto/measure_auto.py WORK_DIR [OLD_SRC]

Workloads: `probe` (3 videos x 4 questions, 320x240 10 s clips, 128 frames: the model
dominates) and `decode_bound` (3 videos x 3 questions, 1280x720 H.264 clips of 60-80 s,
128 frames: decoding dominates). Cases: this tree's auto (on the CPU: decode_workers=0, videos
decoded in torch-free processes) / decode_workers=1 / decode_workers=2, and with OLD_SRC (`git archive HEAD | tar -x -C OLD_SRC`, put
first on PYTHONPATH) the previous code's in-thread decode_workers=0 and its defaults (2 workers here). REPEATS
(default 2) passes, cases interleaved, since the machine's load drifts.
Time: lmms-eval's `evaluate` (model loading excluded), as `lvu-ext bench --workload` times it."""

import json
import os
import sys
import time
from pathlib import Path

from lmms_eval_plugin.bench.realistic_clip import ClipSpec, ensure_realistic_clip
from lmms_eval_plugin.bench.workload.workload import _answers, _run_case, _write_task
from lmms_eval_plugin.bench.workload.workload_launch import TIMING_ENV
from lmms_eval_plugin.bench.workload.workload_task import DOCS_ENV
from lmms_eval_plugin.checkpoints.tiny_models import resolve_pretrained

WORKLOADS = {
    "probe": ([ClipSpec(f"probe_{i}_320x240", 320, 240, 10 + i) for i in range(3)], 4),
    "decode_bound": ([ClipSpec(f"bound_{i}_720p", 1280, 720, 60 + 10 * i) for i in range(3)], 3),
}
CASES = {"auto": "", "workers_1": "decode_workers=1", "workers_2": "decode_workers=2"}
REPEATS = int(os.environ.get("REPEATS", "2"))
OLD_CASES = {"old_workers_0_threads": "decode_workers=0", "old_default": ""}


def main(work: Path, old_src: str | None) -> None:
    os.chdir(work)  # `python -m` puts the working directory first on sys.path: not this tree's folder, so OLD_SRC can win
    model = resolve_pretrained("tiny-random-onevision")
    rows = []
    cases = {**{k: (v, None) for k, v in CASES.items()}, **({k: (v, old_src) for k, v in OLD_CASES.items()} if old_src else {})}
    for name, (specs, questions) in WORKLOADS.items():
        videos = [ensure_realistic_clip(work / "clips", spec) for spec in specs]
        task_dir, docs = _write_task(work / name, videos, questions, 8, "videomme")
        old_task_dir = work / name / "old_task"  # the same task, through the previous tree's module path
        old_task_dir.mkdir(parents=True, exist_ok=True)
        for f in task_dir.iterdir():
            (old_task_dir / f.name).write_text(f.read_text().replace("bench.workload.workload_task", "bench.workload_task"))
        for repeat, (case, (extra, src)) in [(r, c) for r in range(REPEATS) for c in cases.items()]:  # interleaved: load drifts
            out = work / name / f"{case}_{repeat}"
            out.mkdir(parents=True, exist_ok=True)
            timing = out / "timing.json"
            env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                       **{DOCS_ENV: str(docs), TIMING_ENV: str(timing)})
            if src:
                env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
            args = f"pretrained={model},device=cpu,dtype=float32,num_frames=128,resume_journal=off" + (f",{extra}" if extra else "")
            launch = "lmms_eval_plugin.bench.workload_launch" if src else "lmms_eval_plugin.bench.workload.workload_launch"  # moved since
            cmd = [sys.executable, "-m", launch, "--model", "lvu_ext", "--model_args", args,
                   "--tasks", "lvu_workload", "--include_path", str(old_task_dir if src else task_dir), "--batch_size", "1", "--output_path", str(out / "lmms_eval"),
                   "--log_samples"]
            load = os.getloadavg()[0]
            row = _run_case(case, cmd, env, out / "log.txt", timing, 1800)
            picked = [line.split("lvu_ext: ", 1)[1].strip() for line in (out / "log.txt").read_text(errors="replace").splitlines()
                      if "decode_workers=" in line and "lvu_ext: " in line][:1]
            row.update(workload=name, repeat=repeat, load_avg_at_start=load, answers=_answers(out / "lmms_eval"), picked=picked)
            rows.append(row)
            print(f"{name:13s} {case:24s} evaluate {row['evaluate_s'] or float('nan'):7.2f} s  wall {row['wall_s']:7.2f} s  "
                  f"load {load:4.2f}  {row['status']}  {picked[0][:110] if picked else ''}", flush=True)
    (work / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    started = time.monotonic()
    main(Path(sys.argv[1]).resolve(), sys.argv[2] if len(sys.argv) > 2 else None)
    print(f"total {time.monotonic() - started:.0f} s")
