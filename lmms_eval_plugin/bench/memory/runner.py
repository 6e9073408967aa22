"""Runs each (case, frames) in a fresh Python process, so one case's peak RSS and
allocator leftovers never leak into the next. A watchdog kills a child whose RSS
passes the memory limit (reported as OOM, like the kernel's OOM killer would) or that
runs past the time limit (reported as timeout)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lmms_eval_plugin.bench.machine import GB
from lmms_eval_plugin.bench.memory.run_case import CaseSpec, spec_json

POLL_S = 0.2


def mem_available_gb() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 / GB
    except OSError:
        pass
    return None


def _rss_gb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / GB
    except OSError:
        pass
    return 0.0


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(line for line in lines[-n:] if "it/s]" not in line)[-1500:]


def run_in_subprocess(spec: CaseSpec, log_dir: Path, mem_limit_gb: float | None, timeout_s: float) -> dict:
    import json

    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{spec.case}_f{spec.frames}.log"
    fd, result_path = tempfile.mkstemp(prefix="bench_", suffix=".json", dir=log_dir)
    os.close(fd)
    cmd = [sys.executable, "-m", "lmms_eval_plugin.bench.memory.run_case", "--spec", spec_json(spec), "--result", result_path]
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    base = {"case": spec.case, "frames": spec.frames, "peak_mem_gb": None, "baseline_mem_gb": None, "prefill_s": None,
            "ttft_s": None, "total_s": None, "visual_tokens": None, "new_tokens": None}
    seen_peak, killed_for = 0.0, None
    start = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        while proc.poll() is None:
            seen_peak = max(seen_peak, _rss_gb(proc.pid))
            if mem_limit_gb and seen_peak > mem_limit_gb:
                killed_for = "OOM"
            elif time.monotonic() - start > timeout_s:
                killed_for = "timeout"
            if killed_for:
                proc.kill()
                proc.wait()
                break
            time.sleep(POLL_S)
    try:
        if killed_for is None and proc.returncode == 0:
            with open(result_path, encoding="utf-8") as fh:
                return json.load(fh)
    finally:
        os.unlink(result_path)
    if killed_for == "OOM":
        error = f"killed by the benchmark: RSS {seen_peak:.1f} GB passed the {mem_limit_gb:.1f} GB limit"
        return dict(base, status="OOM", peak_mem_gb=seen_peak, error=error)
    if killed_for == "timeout":
        return dict(base, status="timeout", error=f"ran past {timeout_s:.0f} s")
    if proc.returncode in (-9, 137):  # SIGKILL from the kernel's OOM killer
        return dict(base, status="OOM", peak_mem_gb=seen_peak or None, error="killed (SIGKILL, most likely out of memory)")
    return dict(base, status="error", error=f"exit code {proc.returncode}: {_tail(log)}")
