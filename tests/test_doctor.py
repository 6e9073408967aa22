"""`lvu-ext doctor` on this environment, and on one with filelock 4.3.1 forced in front."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cli_runner import REPO, offline_env

DOCTOR = [sys.executable, "-m", "lmms_eval_plugin.cli", "doctor"]


def _doctor(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(DOCTOR, env=env, capture_output=True, text=True, timeout=300, cwd=str(REPO))


def test_doctor_passes_on_this_environment(tmp_path):
    proc = _doctor(offline_env(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    names = " ".join(lines)
    for expected in ("lmms-eval", "transformers", "torch + torchvision", "accelerate", "known-bad", "decord", "PyAV",
                     "CUDA", "flash-attn", "tasks folder", "HF_HOME", "videos: mlvu_dev", "videos: videomme", "videos: longvideobench", "videos: lvbench", "videos: egoschema",
                     "embedded default"):
        assert expected in names, f"no doctor line for {expected}:\n{proc.stdout}"
    assert not any(line.startswith("[FAIL]") for line in lines), proc.stdout
    # the folder it names is the one lmms-eval needs, and the video folders follow HF_HOME
    assert f"--include_path {REPO / 'tasks'}" in proc.stdout
    assert str(tmp_path / "hf_home" / "videomme") in proc.stdout


def _forced_filelock(target) -> str:
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), "filelock==4.3.1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"could not fetch filelock 4.3.1 from the package index:\n{proc.stderr[-2000:]}")
        pytest.skip("filelock 4.3.1 cannot be fetched here (no package index)")
    return str(target)


def test_doctor_names_filelock_when_4_3_1_is_forced_in(tmp_path):
    overlay = _forced_filelock(tmp_path / "overlay")
    env = offline_env(tmp_path, PYTHONPATH=os.pathsep.join(filter(None, [overlay, os.environ.get("PYTHONPATH")])))
    proc = _doctor(env)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    fails = [line for line in proc.stdout.splitlines() if line.startswith("[FAIL]")]
    assert any("filelock 4.3.1" in line for line in fails), out
    assert any("lmms-eval evaluator" in line and "filelock._api" in line for line in fails), out
    assert "pip install 'filelock<4.3'" in proc.stdout


def test_doctor_fails_for_an_hf_home_it_cannot_write(tmp_path):
    """lmms-eval would fail inside its task loading (PermissionError) and still exit 0."""
    not_a_folder = tmp_path / "hf_home_file"
    not_a_folder.write_text("a regular file, not a folder")
    proc = _doctor(offline_env(tmp_path, HF_HOME=str(not_a_folder)))
    assert proc.returncode != 0, proc.stdout + proc.stderr
    fails = [line for line in proc.stdout.splitlines() if line.startswith("[FAIL]")]
    assert any("HF_HOME" in line and str(not_a_folder) in line and "cannot be created or written" in line for line in fails), proc.stdout
    assert "export HF_HOME=/a/writable/folder" in proc.stdout


@pytest.mark.parametrize("where", ["/sys/lvu_ext_hf_home", "/proc/lvu_ext_hf_home"])
def test_hf_home_check_under_a_system_folder(monkeypatch, where):
    from lmms_eval_plugin.doctor import checks
    from lmms_eval_plugin.doctor.result import FAIL, OK

    monkeypatch.setenv("HF_HOME", where)
    assert checks.hf_home().status == FAIL
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("HOME", "/tmp")
    assert checks.hf_home().status == OK
