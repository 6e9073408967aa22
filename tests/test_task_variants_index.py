"""The frame-count variants are indexed by lmms-eval and resolve to the built-in tasks' pieces."""

import functools
import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

from benchmark_fixtures import expected_metadata

TASKS_DIR = Path(__file__).resolve().parents[1] / "tasks"

FRAMES = ("f32", "f64", "f128", "f256", "f512")
# The naming contract (README, report tables): changing a name here is a breaking change.
EXPECTED = {
    "mlvu_dev_lvu": [f"mlvu_dev_lvu_{f}" for f in FRAMES],
    "mlvu_test_lvu": [f"mlvu_test_lvu_{f}" for f in FRAMES],
    "videomme_lvu": [f"videomme_lvu_{f}" for f in FRAMES],
    "longvideobench_val_v_lvu": [f"longvideobench_val_v_lvu_{f}" for f in FRAMES] + ["longvideobench_val_v_lvu_1fps_max512"],
    "longvideobench_test_v_lvu": [f"longvideobench_test_v_lvu_{f}" for f in FRAMES] + ["longvideobench_test_v_lvu_1fps_max512"],
    "lvbench_lvu": [f"lvbench_lvu_{f}" for f in FRAMES],
    "egoschema_subset_lvu": [f"egoschema_subset_lvu_{f}" for f in FRAMES],
    "videomme_long_lvu": [f"videomme_long_lvu_{f}" for f in FRAMES],
    "egoschema_lvu": [f"egoschema_lvu_{f}" for f in FRAMES],
}
BUILTIN = {"mlvu_dev": "mlvu", "mlvu_test": "mlvu", "videomme": "videomme", "longvideobench_val_v": "longvideobench",
           "longvideobench_test_v": "longvideobench", "lvbench": "lvbench", "egoschema_subset": "egoschema", "videomme_long": "videomme", "egoschema": "egoschema"}
ALL_VARIANTS = [(group[: -len("_lvu")], task) for group, tasks in EXPECTED.items() for task in tasks]
# Keys whose values must equal the built-in task's (everything but task/metadata).
SAME_AS_BUILTIN = ("dataset_path", "dataset_kwargs", "test_split", "output_type", "doc_to_target", "generation_kwargs", "lmms_eval_specific_kwargs", "cluster_key")
FUNCTION_KEYS = ("doc_to_visual", "doc_to_text", "process_results")


def _load_generator():
    spec = importlib.util.spec_from_file_location("lvu_generate_variants", TASKS_DIR / "generate_variants.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tm():
    from lmms_eval.tasks import TaskManager

    return TaskManager(verbosity="ERROR", include_path=str(TASKS_DIR))


@pytest.fixture(scope="module")
def config_of(tm):
    return functools.lru_cache(maxsize=None)(tm._get_config)


def test_generated_files_are_up_to_date():
    gen = _load_generator()
    stale = gen.stale_files()
    assert not stale, f"run `python tasks/generate_variants.py` and commit: {stale}"
    generated_tasks = {gen.task_name(b.base, label) for b in gen.BENCHMARKS for label in gen.variant_labels(b)}
    assert generated_tasks == {task for _, task in ALL_VARIANTS}


def test_groups_and_variants_are_indexed_from_the_tasks_folder(tm):
    for group, tasks in EXPECTED.items():
        entry = tm.task_index[group]
        assert entry["type"] == "group"
        # A name clash with a built-in would make the index point into lmms_eval/tasks.
        assert Path(entry["yaml_path"]).parent.parent == TASKS_DIR
        assert tm._get_config(group)["task"] == tasks
        for task in tasks:
            entry = tm.task_index[task]
            assert entry["type"] == "task", task
            assert Path(entry["yaml_path"]).parent.parent == TASKS_DIR
            assert task in tm.all_tasks and task in tm.all_subtasks


def _same_builtin_function(ours, theirs, module_name):
    # Ours is imported by module path, so it is the module's own function object; the built-in
    # task loads utils.py from its file, giving an equal function from a fresh module.
    module = importlib.import_module(module_name)
    assert ours is getattr(module, ours.__name__)
    assert ours.__name__ == theirs.__name__
    assert ours.__code__.co_filename == theirs.__code__.co_filename == module.__file__


@pytest.mark.parametrize("base,task", ALL_VARIANTS)
def test_variant_resolves_to_builtin_task(config_of, base, task):
    ours, theirs = config_of(task), config_of(base)
    module_name = f"lmms_eval.tasks.{BUILTIN[base]}.utils"

    assert ours["task"] == task
    assert ours["metadata"] == expected_metadata(task)
    assert set(ours) - {"metadata"} == set(theirs) - {"metadata"}
    for key in SAME_AS_BUILTIN:
        if callable(theirs.get(key)):  # e.g. EgoSchema's doc_to_target is a function
            _same_builtin_function(ours[key], theirs[key], module_name)
            continue
        assert ours.get(key) == theirs.get(key), key
    for key in FUNCTION_KEYS:
        _same_builtin_function(ours[key], theirs[key], module_name)

    assert len(ours["metric_list"]) == len(theirs["metric_list"])
    for mine, builtin in zip(ours["metric_list"], theirs["metric_list"]):
        assert {k: v for k, v in mine.items() if k != "aggregation"} == {k: v for k, v in builtin.items() if k != "aggregation"}
        aggregation = mine["aggregation"]
        if base in ("longvideobench_test_v", "egoschema"):
            # Submission writer: the built-in one, pointed at a per-task folder.
            assert aggregation.lvu_task == task
            aggregation = aggregation.__wrapped__
        if isinstance(builtin["aggregation"], str):  # a registered aggregation by name (LVBench: mean)
            assert aggregation == builtin["aggregation"]
            continue
        _same_builtin_function(aggregation, builtin["aggregation"], module_name)
