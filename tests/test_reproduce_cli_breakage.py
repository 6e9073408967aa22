"""`lvu-ext reproduce` as users break it (issue 28), through the CLI on the tiny checkpoint and
the local Video-MME stand-in (3 questions on 3 clips of 32, 40 and 48 frames):

1. bad model args are refused before the first row; a row that fails keeps its cause;
2. a killed reproduce takes its lmms-eval child; a second reproduce on the folder is refused;
3. Ctrl-C / SIGTERM end with one line saying what finished and the command that resumes;
4. a verdict on fewer questions than the minimum is withheld, and says so;
5. the plan counts the frames the clips really give, and times the rows left by them."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark_fixtures import build_local_benchmark
from lmms_eval_plugin.reproduce import runner
from lmms_eval_plugin.reproduce.tables import load_table
from lmms_eval_plugin.reproduce.verdict import MIN_QUESTIONS

TABLE = "video-mme-ablation"
LVU_EXT = str(Path(sys.executable).with_name("lvu-ext"))


@pytest.fixture(scope="module")
def videomme(tmp_path_factory):
    root = tmp_path_factory.mktemp("breakage")
    bench = build_local_benchmark(root, "videomme", docs_per_category=1)  # 3 questions, one per clip
    env = {**os.environ, **bench.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return root, bench, env


def _argv(bench, out: Path, *extra: str, pretrained: str = "tiny-random-onevision") -> list[str]:
    return [LVU_EXT, "reproduce", TABLE, "--pretrained", pretrained, "--include-path", bench.include_path_arg, "--out", str(out), *extra]


def _run(argv, env, timeout=300):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid`, from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's reaping is left


def _wait_for_child(proc: subprocess.Popen, timeout: float = 120) -> int:
    """The pid of `proc`'s lmms-eval child, once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the reproduce command ended before its row started"
        for pid in _children(proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(part.endswith(b"lmms-eval") for part in cmdline):
                return pid
        time.sleep(0.1)
    raise AssertionError("no lmms-eval child appeared")


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_bad_model_args_and_include_path_are_refused_before_the_first_row(videomme, tmp_path):
    root, bench, env = videomme
    out = tmp_path / "out"
    proc = _run(_argv(bench, out, "--rows", "baseline_f32", "--model-args", "foo=1"), env)
    assert proc.returncode == 2
    assert "checked before the first row, nothing was run: lvu_ext: unknown model arg(s) foo." in proc.stderr
    assert "(row(s) baseline_f32)" in proc.stderr and "[1/" not in proc.stderr and not out.exists()
    # a key the row sets already: lvu_ext would refuse it in every row of that setting
    twice = _run(_argv(bench, out, "--rows", "baseline_f32", "--model-args", "rope_ext=vcwe"), env)
    assert twice.returncode == 2 and "model arg(s) given more than once: rope_ext" in twice.stderr
    missing = _run([*_argv(bench, out, "--rows", "baseline_f32")[:-4], "--include-path", str(tmp_path / "nowhere"), "--out", str(out)], env)
    assert missing.returncode == 2 and f"--include-path {tmp_path / 'nowhere'}: no such folder" in missing.stderr


def test_a_failed_row_keeps_its_cause_and_may_rerun_with_other_args(videomme, tmp_path, caplog):
    """A checkpoint folder that holds no checkpoint passes every check that loads nothing;
    lmms-eval then fails in the row. Its cause reaches the console, the tables and row.json."""
    root, bench, env = videomme
    out, empty = tmp_path / "out", tmp_path / "not_a_checkpoint"
    empty.mkdir()
    proc = _run(_argv(bench, out, "--rows", "baseline_f32", "--limit", "1", pretrained=str(empty)), env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    folder = out / "rows" / "baseline_f32"
    log_path = folder / runner.LOG_FILE
    cause = f"lvu_ext: the model could not be built: ValueError: Unrecognized model in {empty}."
    line = next(x for x in proc.stderr.splitlines() if x.startswith("lvu-ext reproduce: baseline_f32 failed: "))
    assert "lmms-eval exited 1: " in line and cause in line and line.endswith(f"(log: {log_path})")
    row = json.loads((folder / runner.ROW_FILE).read_text())
    assert cause in row["failed"] and row["log"] == str(log_path)
    with open(out / "reproduction.csv", newline="", encoding="utf-8") as fh:
        verdict = {r["row"]: r["verdict"] for r in csv.DictReader(fh)}["baseline_f32"]
    md = (out / "reproduction.md").read_text()
    assert cause in verdict and cause in md and str(log_path) in md
    assert "\x1b" not in md + (out / "reproduction.csv").read_text() + proc.stderr  # no colour codes copied
    assert "\x1b[" in log_path.read_text()  # ... though the log has them: stripped, not absent

    # nothing was answered there, so the row may run again with other args (said); answers would be refused
    other = json.loads((folder / runner.COMMAND_FILE).read_text())["argv"] + ["--verbosity", "DEBUG"]
    assert not runner.has_answers(folder)
    with caplog.at_level(logging.INFO, logger="lvu_ext.reproduce"):
        runner.check_folder(load_table(TABLE).row("baseline_f32"), folder, other)
    assert "failed before answering anything: it runs again with this one" in caplog.text
    (folder / "journal").mkdir()
    (folder / "journal" / "lvu_ext_journal_rank0.jsonl").write_text('{"key": "k"}\n')
    with pytest.raises(runner.StaleRowError, match="holds answers of row baseline_f32 run by another command"):
        runner.check_folder(load_table(TABLE).row("baseline_f32"), folder, other)


def test_a_killed_parent_takes_its_child_and_one_folder_has_one_reproduce(videomme, tmp_path):
    root, bench, env = videomme
    out = tmp_path / "out"
    argv = _argv(bench, out, "--rows", "baseline_f256", "--limit", "2")
    first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        child = _wait_for_child(first)
        second = _run(argv, env)
        assert second.returncode == 2
        assert f"error: {out} is in use by lvu-ext reproduce (pid {first.pid}): wait for it or stop it" in second.stderr
        first.kill()  # SIGKILL: no handler runs; the kernel's parent-death signal stops the child
        first.wait()
        assert _gone_within(child, 10), "the lmms-eval child outlived its killed reproduce"
    finally:
        first.kill()
    assert len(list((out / "rows" / "baseline_f256").rglob("*_results.json"))) == 0  # the row did not finish unseen


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_ends_with_one_line_naming_the_resume_command(videomme, tmp_path, sig):
    root, bench, env = videomme
    out = tmp_path / "out"
    argv = _argv(bench, out, "--rows", "baseline_f256", "--limit", "2")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        child = _wait_for_child(proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    last = err.strip().splitlines()[-1]
    at = argv.index("--out")
    resume = shlex.join(["lvu-ext", *argv[1:at], *argv[at + 2:], "--out", str(out)])
    assert last == (f"lvu-ext reproduce: stopped by {sig.name}: 0 of 1 row(s) finished; baseline_f256 stopped part way "
                    f"(its answers so far are kept in its journal); resume with: {resume}"), last
    assert not _alive(child)
    # the plan before it: the frames the clips really give (32, 40, 48 frames; 256 asked), the first 2 questions' video
    assert "2 question(s) on 2 video(s), up to 512 frames; 72 frames to sample" in err


def test_verdicts_state_their_sample_and_the_estimate_counts_real_frames(videomme, tmp_path):
    """Two rows of the 3-question stand-in: baseline_f256 (run first, timed) and baseline_f32."""
    root, bench, env = videomme
    out = tmp_path / "out"
    proc = _run(_argv(bench, out, "--rows", "baseline_f256,baseline_f32"), env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sampled = {n: sum(min(n, f) for f in bench.doc_frames) for n in (256, 32)}  # a clip shorter than the plan gives all it has
    assert sampled == {256: 120, 32: 96}
    assert f"baseline_f256 (videomme_lvu_f256): 3 question(s) on 3 video(s), up to 768 frames; {sampled[256]} frames to sample" in proc.stderr
    assert f"baseline_f32 (videomme_lvu_f32): 3 question(s) on 3 video(s), up to 96 frames; {sampled[32]} frames to sample" in proc.stderr
    timed = json.loads((out / "rows" / "baseline_f256" / runner.ROW_FILE).read_text())
    assert timed["frames"] == sampled[256]  # what lvu_ext's request records say it sampled
    said = re.search(r"time for the 1 row\(s\) left: about (\d+) s on this node", proc.stderr)
    assert said, proc.stderr[-2000:]
    assert int(said.group(1)) == round(timed["wall_s"] / sampled[256] * sampled[32])
    with open(out / "reproduction.csv", newline="", encoding="utf-8") as fh:
        row = {r["row"]: r for r in csv.DictReader(fh)}["baseline_f32"]
    assert row["verdict"] == f"no verdict: too few questions to decide (3 scored; a verdict needs at least {MIN_QUESTIONS})"
    assert row["sample"] == "3 of 2,700 questions" and row["tolerance"]
    md = (out / "reproduction.md").read_text()
    assert "too few questions to decide" in md and "Judged rows: 0" in md


def test_a_subset_verdict_says_its_sample_and_interval():
    from lmms_eval_plugin.reproduce.verdict import Measured, compare, tolerance

    table = load_table(TABLE)

    def got(score, n):
        return Measured(score=score, n=n, harness="0.7.3", revision="abc")

    lines = {line.row.id: line for line in compare(table, {"baseline_f256": got(56.0, 300), "baseline_f32": got(57.5, 300)}, {})}
    line, tol = lines["baseline_f32"], tolerance(58.2, 56.2, 300)
    assert line.verdict == "reproduces" and line.tolerance == pytest.approx(tol)
    assert line.sample == f"300 of 2,700 questions: the paper's Δ +2.0 reproduces within [{1.5 - tol:+.1f}, {1.5 + tol:+.1f}]"
    full = {line.row.id: line for line in compare(table, {"baseline_f256": got(56.0, 2700), "baseline_f32": got(57.5, 2700)}, {})}
    assert full["baseline_f32"].verdict == "reproduces" and full["baseline_f32"].sample == ""


def test_the_cause_of_a_chained_traceback_is_every_exception_of_the_chain():
    from lmms_eval_plugin.reproduce.failure import cause_lines

    log = "\n".join([
        "\x1b[32m2026-12-05 12:53:51\x1b[0m | \x1b[1mINFO    \x1b[0m | lmms_eval:run:1 - lvu_ext: resume journal x (0 answers on record)",
        "Traceback (most recent call last):", '  File "a.py", line 1, in f', "    open(p)",
        "FileNotFoundError: Unable to find '/data/videomme.jsonl'", "",
        "The above exception was the direct cause of the following exception:", "",
        "Traceback (most recent call last):", '  File "b.py", line 2, in g', "    raise retry_exc from fut.exception()",
        "tenacity.RetryError: RetryError[<Future state=finished raised FileNotFoundError>]",
        "\x1b[31m2026-12-05 12:53:51\x1b[0m | \x1b[31mERROR   \x1b[0m | lmms_eval.__main__:cli_evaluate:614 - Error during evaluation: RetryError",
    ])
    assert cause_lines(log) == ["FileNotFoundError: Unable to find '/data/videomme.jsonl'",
                                "tenacity.RetryError: RetryError[<Future state=finished raised FileNotFoundError>]"]
