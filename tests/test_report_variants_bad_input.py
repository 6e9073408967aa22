"""`lvu-ext report` and `lvu-ext variants` as users break them (issue 28, rows 6-8): every bad
input named in one line with exit status 2, `--baseline` checked against the runs' frame
counts, and variants written into a folder that has some already keep one consistent group."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmark_fixtures import build_local_benchmark, run_lmms_eval

LVU_EXT = str(Path(sys.executable).with_name("lvu-ext"))


def _cli(*args: str):
    return subprocess.run([LVU_EXT, *args], capture_output=True, text=True, timeout=120)


def _one_error_line(proc, prefix: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(prefix), lines
    return lines[0]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """One lmms-eval run (its dummy model) of the stand-in's 32-frame Video-MME variant."""
    root = tmp_path_factory.mktemp("report_bad")
    bench = build_local_benchmark(root, "videomme", docs_per_category=1)
    out = root / "runs"
    proc = run_lmms_eval(["--model", "dummy", "--tasks", bench.task_for("f32"), "--include_path", bench.include_path_arg,
                          "--output_path", str(out)], env=bench.env)
    assert proc.returncode == 0 and list(out.rglob("*_results.json")), (proc.stdout + proc.stderr)[-3000:]
    return out


def test_report_names_every_bad_input_in_one_line(tmp_path):
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps([{"model": "m"}]))  # a list, not {"rows": [...]}
    taken = tmp_path / "taken"
    taken.write_text("a file")
    line = _one_error_line(_cli("report", str(tmp_path / "missing"), "--out", str(taken), "--references", str(refs),
                                "--bench", str(tmp_path / "no_bench.json")), "lvu-ext report: error: ")
    for named in (f"{tmp_path / 'missing'}: no such file or folder", f"--out {taken}: an existing file, not a folder",
                  f"--bench {tmp_path / 'no_bench.json'}: no such file",
                  f"--references {refs}: expected a JSON object with a \"rows\" list (see data/reference_results.json), got list"):
        assert named in line, line
    assert taken.read_text() == "a file"


def test_baseline_frames_are_checked_against_the_runs(results, tmp_path):
    bad = _one_error_line(_cli("report", str(results), "--out", str(tmp_path / "r1"), "--baseline", "rope_ext=vcwe@abc"),
                          "lvu-ext report: error: ")
    assert "frame count 'abc' is neither a count (e.g. 32) nor a rate (e.g. 1fps<=512)" in bad
    absent = _one_error_line(_cli("report", str(results), "--out", str(tmp_path / "r2"), "--baseline", "rope_ext=none@64"),
                             "lvu-ext report: error: ")
    assert "--baseline rope_ext=none@64: no run has 64 frames (the runs have: 32), so no row gets a Δ" in absent
    assert not (tmp_path / "r2").exists()
    ok = _cli("report", str(results), "--out", str(tmp_path / "r3"), "--baseline", "rope_ext=none@32")
    assert ok.returncode == 0, ok.stderr[-2000:]


def test_variants_name_every_bad_input_in_one_line(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    line = _one_error_line(_cli("variants", "videomme", "--frames", "16", "--fps", "1", "--out", str(taken)), "lvu-ext variants: ")
    assert "--fps (> 0) and --max-frames (>= 1) go together" in line and f"--out {taken}: an existing file, not a folder" in line
    assert taken.read_text() == "a file"


def test_variants_into_a_folder_with_variants_keep_one_group(tmp_path, capsys):
    from lmms_eval_plugin.tasks import variants_cli

    out = tmp_path / "variants"
    assert variants_cli.main(["videomme", "--frames", "16,64", "--out", str(out)]) == 0
    assert variants_cli.main(["videomme", "--frames", "128", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"{out} already has videomme_lvu_f16, videomme_lvu_f64: the group videomme_lvu lists them too" in said
    group = yaml.safe_load((out / "videomme_lvu.yaml").read_text())
    on_disk = sorted(p.stem for p in out.glob("videomme_lvu_f*.yaml"))
    assert sorted(group["task"]) == on_disk == ["videomme_lvu_f128", "videomme_lvu_f16", "videomme_lvu_f64"]
