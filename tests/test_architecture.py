"""The package's shape: every module imports on its own (no circle hides behind an import
order), the top level stays small, the model class stays a thin adapter, and the README's
layout section names what is there."""

from __future__ import annotations

import multiprocessing
import re
import sys
import traceback

import pytest

from cli_runner import REPO

PACKAGE = REPO / "lmms_eval_plugin"
MODEL_CLASS = PACKAGE / "models" / "lvu_ext.py"


def _modules() -> list[str]:
    """Every module of the installed package: lmms_eval_plugin/ plus patches/ and the task
    generator, which ship as lmms_eval_plugin.patches / lmms_eval_plugin.tasks."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__main__.py":  # `python -m` entry: importing it runs the command
            continue
        parts = path.relative_to(REPO).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    for folder in ("patches", "tasks"):
        for path in sorted((REPO / folder).glob("*.py")):
            stem = path.stem
            names.append(f"lmms_eval_plugin.{folder}" + ("" if stem == "__init__" else f".{stem}"))
    return names


def _ours_or_registry(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in ("lmms_eval_plugin", "lmms_eval.models"))


def _import_alone(name: str, conn) -> None:
    # A forked child: the heavy third-party modules the parent loaded stay, but every module
    # of ours and lmms-eval's model registry (which imports our entry point) are dropped, so
    # `name` is the first of ours to load.
    for loaded in [m for m in sys.modules if _ours_or_registry(m)]:
        del sys.modules[loaded]
    try:
        __import__(name)
        if "lmms_eval.models" in sys.modules:  # a circle through the registry only logs a warning
            sys.modules["lmms_eval.models"].get_model("lvu_ext")
        conn.send(None)
    except BaseException:  # noqa: B036 - a SystemExit at import is a failure too
        conn.send(traceback.format_exc())


def test_every_module_imports_alone():
    import lmms_eval.api.model  # noqa: F401 - loaded once here, shared by the forked children
    import torch  # noqa: F401
    import transformers  # noqa: F401

    ctx = multiprocessing.get_context("fork")
    failures = {}
    for name in _modules():
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_import_alone, args=(name, child))
        proc.start()
        child.close()
        error = parent.recv() if parent.poll(120) else "no answer within 120 s"
        proc.join(30)
        if error is not None or proc.exitcode != 0:
            failures[name] = error or f"exit code {proc.exitcode}"
    assert not failures, "\n\n".join(f"{name}:\n{error}" for name, error in failures.items())


def test_module_list_covers_the_subpackages():
    names = set(_modules())
    for package in ("engine", "bookkeeping", "failures", "checkpoints", "method", "models", "report", "bench", "doctor"):
        assert f"lmms_eval_plugin.{package}" in names
    assert "lmms_eval_plugin.engine.video" in names and "lmms_eval_plugin.patches.rope_window" in names


def test_top_level_stays_small():
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 8, top


def test_model_class_is_a_thin_adapter():
    lines = MODEL_CLASS.read_text(encoding="utf-8").count("\n")
    assert lines <= 400, f"{MODEL_CLASS.relative_to(REPO)} has {lines} lines"


def test_pyproject_ships_every_subpackage():
    import tomllib

    packages = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"lmms_eval_plugin." + p.parent.relative_to(PACKAGE).as_posix().replace("/", ".")
               for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE}
    assert on_disk <= packages, sorted(on_disk - packages)


@pytest.mark.parametrize("entry", sorted(
    [p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()]
    + [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
))
def test_architecture_page_names_it(entry):
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert re.search(rf"`{re.escape(entry)}", page), f"docs/architecture.md does not name {entry}"
