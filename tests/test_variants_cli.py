"""`lvu-ext variants`: frame-count variants of a built-in video task that ships none
(lmms-eval's `videomme_video_only_abcd`, whose YAML includes a template one folder up), written
by the same generator, indexed by the harness and run end to end with lvu_ext on a local
Video-MME fixture; an image task is refused with the reason."""

from __future__ import annotations

import subprocess
import sys

import yaml

from benchmark_fixtures import build_local_benchmark, read_outputs, run_lmms_eval

TASK = "videomme_video_only_abcd"
VARIANTS = [sys.executable, "-m", "lmms_eval_plugin.cli", "variants"]


def test_variants_of_a_builtin_task_are_indexed_and_run(tmp_path):
    out = tmp_path / "variants"
    proc = subprocess.run([*VARIANTS, TASK, "--frames", "8", "--fps", "1", "--max-frames", "4", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {p.name for p in out.iterdir()}
    assert names == {f"_{TASK}_lvu_template.yaml", f"{TASK}_lvu_f8.yaml", f"{TASK}_lvu_1fps_max4.yaml", f"{TASK}_lvu.yaml"}

    from lmms_eval.tasks import TaskManager

    tm = TaskManager(verbosity="ERROR", include_path=str(out))
    assert tm.task_index[f"{TASK}_lvu"]["type"] == "group"
    ours, theirs = tm._get_config(f"{TASK}_lvu_f8"), tm._get_config(TASK)
    assert ours["metadata"] == {"version": 0.0, "lvu_num_frames": 8}
    assert tm._get_config(f"{TASK}_lvu_1fps_max4")["metadata"] == {"version": 0.0, "lvu_fps": 1.0, "lvu_max_frames": 4}
    for key in ("doc_to_visual", "doc_to_text", "process_results"):  # the harness's own functions, from their own files
        assert ours[key].__qualname__ == theirs[key].__qualname__, key
        assert ours[key].__code__.co_filename == theirs[key].__code__.co_filename, key

    # run the f8 variant on a local fixture in Video-MME's layout (this task's data)
    local = build_local_benchmark(tmp_path / "fixture", "videomme")
    real = yaml.safe_load((local.root / "lmms_tasks" / "videomme" / "videomme_lvu_f32.yaml").read_text())
    runs = tmp_path / "local_tasks"
    runs.mkdir()
    (runs / f"{TASK}_lvu_f8.yaml").write_text(yaml.safe_dump(
        {"include": str(out / f"{TASK}_lvu_f8.yaml"), "dataset_path": "json", "dataset_kwargs": real["dataset_kwargs"]}))
    records = tmp_path / "records.jsonl"
    result = run_lmms_eval(["--model", "lvu_ext", "--model_args", f"pretrained=tiny-random-onevision,record_path={records}",
                            "--tasks", f"{TASK}_lvu_f8", "--include_path", str(runs), "--output_path", str(tmp_path / "out"),
                            "--log_samples"], env=local.env)
    log = result.stdout + result.stderr
    assert result.returncode == 0 and "Error during evaluation" not in log, log[-3000:]
    results, samples = read_outputs(tmp_path / "out")
    assert len(samples[f"{TASK}_lvu_f8"]) == len(local.docs)
    assert "acc_score,none" in results["results"][f"{TASK}_lvu_f8"]  # the harness's own metric
    recs = [yaml.safe_load(line) for line in records.read_text().splitlines() if line.strip()]
    assert [r["frames_sampled"] for r in recs] == [min(8, n) for n in local.doc_frames] and all(r["status"] == "ok" for r in recs)


def test_an_image_task_and_an_unknown_task_are_refused(tmp_path):
    for task, why in (("mme", "not a video task"), ("no_such_task_xyz", "not a task lmms-eval knows")):
        proc = subprocess.run([*VARIANTS, task, "--frames", "8", "--out", str(tmp_path / task)], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 2 and f"lvu-ext variants: {task}: {why}" in proc.stderr, proc.stderr[-2000:]
        assert not (tmp_path / task).exists()
