"""`lvu-ext reproduce` end to end on CPU: the tiny OneVision checkpoint, Video-MME's document
schema (benchmark_fixtures), the real lmms-eval CLI for every row. The scores mean nothing;
what is checked is the plumbing: every measured cell is the harness's own number in that
row's results JSON, a rerun runs nothing, a killed reproduction resumes with only the
missing rows, and the printed commands run unchanged when pasted."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark_fixtures import build_local_benchmark
from lmms_eval_plugin.reproduce.tables import load_table

TABLE = "video-mme-ablation"
LVU_EXT = str(Path(sys.executable).with_name("lvu-ext"))


@pytest.fixture(scope="module")
def videomme(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    bench = build_local_benchmark(root, "videomme")
    env = {**os.environ, **bench.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return root, bench, env


def _reproduce(bench, env, out: Path, *extra: str, **kwargs):
    argv = [LVU_EXT, "reproduce", TABLE, "--pretrained", "tiny-random-onevision", "--limit", "2",
            "--include-path", bench.include_path_arg, "--out", str(out), *extra]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, **kwargs)


def _results_file(folder: Path) -> Path:
    files = sorted(folder.rglob("*_results.json"))
    assert len(files) == 1, files
    return files[0]


def _harness_number(folder: Path, task: str) -> float:
    """The row's headline straight from lmms-eval's results JSON (Video-MME: percent)."""
    results = json.loads(_results_file(folder).read_text())["results"][task]
    return results["videomme_perception_score,none"]


def _check_report(out: Path) -> list[dict]:
    table = load_table(TABLE)
    with open(out / "reproduction.csv", newline="", encoding="utf-8") as fh:
        rows = {r["row"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {r.id for r in table.rows}  # not-runnable rows listed, never dropped
    for row in table.rows:
        line = rows[row.id]
        assert float(line["paper"]) == row.paper
        if not row.runnable:
            assert line["measured"] == "" and line["verdict"].startswith("not runnable: ")
            continue
        expected = _harness_number(out / "rows" / row.id, row.task)
        assert float(line["measured"]) == pytest.approx(expected, abs=1e-9)
        base = rows[row.baseline or row.id]
        assert float(line["measured_delta"]) == pytest.approx(expected - float(base["measured"]), abs=1e-9)
        assert line["n"] == "2" and line["peak_mem_gb"] == ""  # CPU: not measured
        records = [json.loads(x) for x in (out / "rows" / row.id / "lvu_ext_requests.jsonl").read_text().splitlines() if x.strip()]
        assert records and all(r["status"] == "ok" and "peak_mem_gb" not in r for r in records)  # absent off CUDA, never 0
    md = (out / "reproduction.md").read_text()
    assert "not runnable: fine-tuned with LoRA" in md and "not measured" in md
    assert (out / "reproduction.png").stat().st_size > 0
    return list(rows.values())


def _not_run_again(stderr: str) -> set[str]:
    return {line.split(": ")[1] for line in stderr.splitlines() if line.endswith("not run again")}


def test_a_killed_reproduction_resumes_with_the_missing_rows_and_a_rerun_runs_nothing(videomme):
    root, bench, env = videomme
    out = root / "killed"
    runnable = [r.id for r in load_table(TABLE).runnable]
    argv = [LVU_EXT, "reproduce", TABLE, "--pretrained", "tiny-random-onevision", "--limit", "2",
            "--include-path", bench.include_path_arg, "--out", str(out)]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while not (out / "rows" / runnable[1] / "row.json").exists():
            assert first.poll() is None and time.monotonic() < deadline, "the first rows never finished"
            time.sleep(0.2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the reproduction and its lmms-eval child, mid-table
        first.wait()
    finished = [r for r in runnable if (out / "rows" / r / "row.json").exists()]
    assert 2 <= len(finished) < len(runnable)
    kept = {r: _results_file(out / "rows" / r).stat().st_mtime_ns for r in finished}

    second = _reproduce(bench, env, out)
    assert second.returncode == 0, second.stderr[-4000:]
    assert _not_run_again(second.stderr) == set(finished)
    assert {r: _results_file(out / "rows" / r).stat().st_mtime_ns for r in finished} == kept
    _check_report(out)

    third = _reproduce(bench, env, out)
    assert third.returncode == 0, third.stderr[-4000:]
    assert _not_run_again(third.stderr) == set(runnable)
    assert "[1/" not in third.stderr  # no row started
    assert [len(list((out / "rows" / r).rglob("*_results.json"))) for r in runnable] == [1] * len(runnable)


def test_dry_run_prints_one_command_per_row_that_runs_when_pasted(videomme):
    root, bench, env = videomme
    out = root / "pasted"
    table = load_table(TABLE)
    dry = _reproduce(bench, env, out, "--dry-run")
    assert dry.returncode == 0, dry.stderr[-4000:]
    lines = [line for line in dry.stdout.splitlines() if line.strip()]
    assert len(lines) == len(table.runnable) and all(line.startswith("lmms-eval --model lvu_ext ") for line in lines)
    assert not (out / "rows").exists()  # a dry run runs nothing
    assert "not runnable: vcwe_finetuned_f256" in dry.stderr
    assert "2 question(s) on 1 video(s), up to 512 frames" in dry.stderr  # the plan: counted from the annotations
    for line in lines:  # pasted into a shell, unchanged
        proc = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    for row in table.runnable:
        assert _harness_number(out / "rows" / row.id, row.task) is not None
    # the reproduction reads the pasted rows' results: nothing runs again
    report = _reproduce(bench, env, out)
    assert report.returncode == 0, report.stderr[-4000:]
    assert _not_run_again(report.stderr) == {r.id for r in table.runnable}
    _check_report(out)


def test_a_folder_made_by_another_command_is_refused(videomme):
    root, bench, env = videomme
    out = root / "killed"  # written by the first test with --limit 2
    if not (out / "rows").exists():
        pytest.skip("needs the resumed reproduction's folder")
    proc = _reproduce(bench, env, out, "--model-args", "prefill_chunk=64")
    assert proc.returncode == 2
    assert "run by another command" in proc.stderr and str(out / "rows") in proc.stderr
    assert "[1/" not in proc.stderr


def _answers(folder: Path, task: str) -> dict:
    samples = next(folder.rglob(f"*_samples_{task}.jsonl"))
    return {s["doc_id"]: s["filtered_resps"] for s in map(json.loads, samples.read_text().splitlines()) if s}


def test_rows_under_two_processes_answer_as_one_process(videomme):
    """`--processes 2`: each row under `accelerate launch --multi_gpu` (CPU processes here);
    `--rows` runs only the rows named. The answers equal the 1-process rows' (first test)."""
    root, bench, env = videomme
    one = root / "killed"
    if not (one / "reproduction.csv").exists():
        pytest.skip("needs the 1-process reproduction")
    out = root / "two"
    rows = ["baseline_f32", "vcwe_pooling_f256"]
    proc = _reproduce(bench, {**env, "ACCELERATE_USE_CPU": "1"}, out, "--processes", "2", "--rows", ",".join(rows))
    assert proc.returncode == 0, proc.stderr[-4000:]
    table = load_table(TABLE)
    for row_id in rows:
        row = table.row(row_id)
        command = json.loads((out / "rows" / row_id / "command.json").read_text())["argv"]
        assert command[:5] == ["accelerate", "launch", "--multi_gpu", "--num_processes", "2"]
        assert _answers(out / "rows" / row_id, row.task) == _answers(one / "rows" / row_id, row.task)
        assert json.loads((out / "rows" / row_id / "lvu_ext_run.json").read_text())["processes"] == 2
    with open(out / "reproduction.csv", newline="", encoding="utf-8") as fh:
        status = {r["row"]: r["verdict"] for r in csv.DictReader(fh)}
    assert status["yarn_language_f256"] == "not run" and status["baseline_f256"] == "not run"
    bad = _reproduce(bench, env, out, "--rows", "no_such_row")
    assert bad.returncode == 2 and "no_such_row" in bad.stderr
