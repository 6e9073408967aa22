"""Run the real `lmms-eval` CLI in a subprocess and read back what it wrote.

lmms-eval exits 0 even when evaluation raised, so callers must check the files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASKS = REPO / "tasks"
LMMS_EVAL = [sys.executable, "-m", "lmms_eval"]


def offline_env(tmp: Path, **extra) -> dict:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               LVU_EXT_CACHE=os.environ.get("LVU_EXT_TEST_CACHE", str(tmp / "lvu_cache")), HF_HOME=str(tmp / "hf_home"))
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict, launcher: list[str] | None = None, timeout: int = 600, check_rc: bool = True):
    cmd = (launcher or LMMS_EVAL) + args
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=str(REPO))
    if check_rc:
        assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def results_file(out: Path) -> dict:
    files = sorted(out.rglob("*_results.json"))
    assert files, f"no *_results.json under {out}: evaluation did not finish"
    return json.loads(files[-1].read_text())


def samples(out: Path, task: str) -> list[dict]:
    files = sorted(out.rglob(f"*_samples_{task}.jsonl"))
    assert files, f"no samples file for {task} under {out}"
    return [json.loads(line) for line in files[-1].read_text().splitlines() if line.strip()]


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
