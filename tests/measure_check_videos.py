"""Time `lvu-ext check-videos` on N generated videos (a measurement for docs/decoding.md,
not a test): `python tests/measure_check_videos.py --n 200 --out /tmp/cv200`.

The videos are H.264 MP4s from FFmpeg's testsrc2 (the FFmpeg of the imageio-ffmpeg wheel),
320x240 at 30 fps, 20 to 40 s long, kept in OUT/videos between runs. The check runs through
the real CLI on the test task (tests/bad_video_task, 32 frames per video from the task's
metadata), on every core, first from scratch, then again on the same folder (the resume)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASK = "lvu_check_videos_timing"


def make_videos(folder: Path, n: int) -> list[str]:
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"clip_{i:04d}.mp4"
        if not path.exists():
            seconds = 20 + i % 21
            subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=30:duration={seconds}",
                            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)], check=True)
        paths.append(str(path))
    return paths


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--out", default="/tmp/check_videos_timing")
    args = p.parse_args()
    out = Path(args.out)
    start = time.monotonic()
    videos = make_videos(out / "videos", args.n)
    print(f"{len(videos)} videos ready in {time.monotonic() - start:.0f} s")
    docs = out / "docs.json"
    docs.write_text(json.dumps([{"doc_id": i, "kind": "good", "video": v, "answer": "A"} for i, v in enumerate(videos)]))
    tasks = out / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / f"{TASK}.yaml").write_text(f"include: {HERE / 'bad_video_task' / 'lvu_test_videos.yaml'}\ntask: {TASK}\n"
                                        f"metadata:\n  version: 0.1\n  lvu_num_frames: {args.frames}\n")
    env = dict(os.environ, LVU_EXT_TEST_DOCS=str(docs), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "lmms_eval_plugin.cli", "check-videos", "--tasks", TASK, "--include_path", str(tasks),
           "--out", str(out / "check")]
    for label, extra in (("from scratch", ["--fresh"]), ("rerun (resume)", [])):
        t = time.monotonic()
        proc = subprocess.run(cmd + extra, env=env, capture_output=True, text=True)
        wall = time.monotonic() - t
        summary = json.loads((out / "check" / "check_videos.json").read_text())["summary"]
        print(f"{label}: exit {proc.returncode}, {wall:.1f} s wall for the command, {summary['elapsed_s']:.1f} s checking; "
              f"{summary['ok']} ok / {summary['warn']} warn / {summary['fail']} fail; decode {summary['decode_core_hours']:.5f} core-hours "
              f"({summary['decode_core_hours'] * 3600:.1f} CPU s, {summary['decode_core_hours'] * 3600 / max(1, summary['videos']):.3f} s per video)")
        if proc.returncode not in (0, 1):
            print(proc.stderr[-3000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
