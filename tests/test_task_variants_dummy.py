"""The variants run end to end through the lmms-eval CLI with the harness's `dummy` model on the
local fixture data, and the frame count travels in Instance.metadata and the results JSON."""

import json

import pytest

from benchmark_fixtures import BENCHMARKS, build_local_benchmark, expected_metadata, harness_metric, read_outputs, run_lmms_eval


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    return {b: build_local_benchmark(root, b) for b in BENCHMARKS}


def test_dummy_model_runs_variants_and_groups(local, tmp_path):
    mlvu_dev, lvb_test = local["mlvu_dev"], local["longvideobench_test_v"]
    singles = [local["mlvu_test"].task_for("f32"), local["videomme"].task_for("f256"), local["longvideobench_val_v"].task_for("1fps_max512")]
    out = tmp_path / "out"
    proc = run_lmms_eval(
        ["--model", "dummy", "--tasks", ",".join([mlvu_dev.group, lvb_test.group, *singles]),
         "--include_path", mlvu_dev.include_path_arg, "--output_path", str(out), "--log_samples"],
        env=mlvu_dev.env,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "Error during evaluation" not in log, log[-3000:]
    results, samples = read_outputs(out)

    assert results["group_subtasks"][mlvu_dev.group] == [mlvu_dev.task_for(lbl) for lbl in mlvu_dev.labels]
    assert results["group_subtasks"][lvb_test.group] == [lvb_test.task_for(lbl) for lbl in lvb_test.labels]
    tasks = {t: local[b] for b in ("mlvu_dev", "longvideobench_test_v") for t in results["group_subtasks"][local[b].group]}
    tasks.update({t: local[t.rsplit("_lvu_", 1)[0]] for t in singles})

    for task, bench in tasks.items():
        # The frame count of each task is in the results JSON.
        assert results["configs"][task]["metadata"] == expected_metadata(task)
        assert len(samples[task]) == len(bench.docs)
        metric, expected = harness_metric(task, samples[task])
        if bench.benchmark == "longvideobench_test_v":
            # Test split: the harness's submission file, one per variant (the group does not overwrite).
            assert results["results"][task]["submission,none"] is None
            path = out / task / "submissions" / "longvideobench_test_for_submission.json"
            assert json.loads(path.read_text()) == {d["id"]: "A" for d in bench.docs}
        else:
            # dummy answers "A" everywhere; the harness scored it with its own aggregation.
            assert all(s["filtered_resps"] == "A" for s in samples[task])
            assert results["results"][task][f"{metric},none"] == pytest.approx(expected)
            assert 0 < expected < (1 if metric == "lvb_acc" else 100)

def test_instances_carry_the_frame_count(local, monkeypatch):
    """The channel lvu_ext reads: the task's metadata dict is copied into every Instance.metadata."""
    from lmms_eval.tasks import TaskManager

    lvb = local["longvideobench_val_v"]
    for key, value in lvb.env.items():
        monkeypatch.setenv(key, value)
    # include_defaults=False: the fixture folder alone (its YAMLs include ours by absolute path).
    tm = TaskManager(verbosity="ERROR", include_path=lvb.include_path_arg, include_defaults=False)
    names = [lvb.task_for("f64"), lvb.task_for("1fps_max512"), local["videomme"].task_for("f512")]
    loaded = tm.load_task_or_group(names)
    assert set(loaded) == set(names)
    for name, task in loaded.items():
        task.build_all_requests(limit=2)
        assert len(task.instances) == 2
        for inst in task.instances:
            for key, value in expected_metadata(name).items():
                assert inst.metadata[key] == value
            assert inst.metadata["task"] == name
