"""`lvu-ext variants TASK [TASK ...] --frames 64,128 [--fps 1 --max-frames 512] --out DIR`:
frame-count variants of any installed lmms-eval video task, written with the same
generator as the shipped ones (tasks/generate_variants.py): a template that copies the
built-in YAML with its functions referenced by module path, one YAML per frame count
(`<task>_lvu_f64`, `<task>_lvu_1fps_max512`) and a group (`<task>_lvu`). Run them with
`lmms-eval --include_path DIR --tasks <task>_lvu_f64 ...`.

Refused, with the reason: a task lmms-eval does not know, a group, a task whose YAML is not
one of the installed lmms-eval's own, a task that is not a video task (its YAML does not
set `dataset_kwargs.video: true`, so its documents carry images), and a multi-round task.
A task whose `doc_to_visual` yields several videos per document is only seen at run time:
each such document then fails with "expected one video path from doc_to_visual".
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

try:  # shipped as lmms_eval_plugin.tasks; run from a checkout as tasks/
    from lmms_eval_plugin.tasks import generate_variants as gen
except ImportError:  # pragma: no cover
    import generate_variants as gen

ANSWERABLE = ("generate_until", "multiple_choice", "loglikelihood")


class NotVariable(ValueError):
    """A task lvu-ext variants cannot vary; the message says why."""


def _frames(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--frames takes integers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--frames takes integers >= 1, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lvu-ext variants", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tasks", nargs="+", help="installed lmms-eval task names")
    p.add_argument("--frames", type=_frames, default=(), help="uniform frame counts, e.g. 64,128")
    p.add_argument("--fps", type=float, default=None, help="also a variant sampling this many frames a second")
    p.add_argument("--max-frames", type=int, default=None, help="the cap of the --fps variant (required with --fps)")
    p.add_argument("--out", required=True, help="folder to write into (pass it to lmms-eval as --include_path)")
    return p


def spec_for(task: str, task_index: dict, frames: tuple, fps_variants: tuple) -> gen.Benchmark:
    """The generator's Benchmark for an installed task, or NotVariable naming why not."""
    entry = task_index.get(task)
    if entry is None:
        raise NotVariable(f"{task}: not a task lmms-eval knows (see `lmms-eval --tasks list`)")
    if entry.get("type") != "task":
        raise NotVariable(f"{task}: a {entry.get('type')}, not a task: name the tasks it runs")
    yaml_path = Path(entry["yaml_path"]).resolve()
    root = gen.lmms_eval_tasks_dir().resolve()
    if root not in yaml_path.parents:
        raise NotVariable(f"{task}: its YAML ({yaml_path}) is not one of the installed lmms-eval's own tasks")
    bench = gen.Benchmark(task, yaml_path.parent.relative_to(root).as_posix(), "", yaml_name=yaml_path.name,
                          frames=frames, fps_variants=fps_variants)
    config = gen.load_builtin(bench)
    if config.get("task") != task:
        raise NotVariable(f"{task}: its YAML {yaml_path} defines {config.get('task')!r}, so it cannot be copied alone")
    if not (config.get("dataset_kwargs") or {}).get("video"):
        raise NotVariable(f"{task}: not a video task (its YAML does not set dataset_kwargs.video: true, so its documents "
                          f"carry images); lvu_ext samples frames from one video per document")
    if config.get("output_type") not in ANSWERABLE:
        raise NotVariable(f"{task}: output_type {config.get('output_type')!r}; lvu_ext answers {', '.join(ANSWERABLE)}")
    if "doc_to_visual" not in config:
        raise NotVariable(f"{task}: no doc_to_visual, so no video to sample frames from")
    return bench


def files_for(bench: gen.Benchmark) -> dict[str, str]:
    files = {gen.template_name(bench.base): gen.render_template(bench)}
    for label in gen.variant_labels(bench):
        files[f"{gen.task_name(bench.base, label)}.yaml"] = gen.render_variant(bench, label)
    files[f"{gen.group_name(bench.base)}.yaml"] = gen.render_group(bench)
    return files


def _usage_problems(ns) -> list[str]:
    problems = []
    if (ns.fps is None) != (ns.max_frames is None) or (ns.fps is not None and (ns.fps <= 0 or ns.max_frames < 1)):
        problems.append("--fps (> 0) and --max-frames (>= 1) go together")
    elif not ns.frames and ns.fps is None:
        problems.append("say which variants: --frames 64,128 and/or --fps 1 --max-frames 512")
    out = Path(ns.out)
    if out.exists() and not out.is_dir():
        problems.append(f"--out {out}: an existing file, not a folder")
    elif not out.exists() and out.parent.exists() and not out.parent.is_dir():
        problems.append(f"--out {out}: {out.parent} is a file")
    return problems


def existing_labels(out: Path, base: str) -> list[str]:
    """Frame labels of the variants of `base` already in `out` (a former run's)."""
    prefix = f"{gen.task_name(base, '')}"
    labels = []
    for path in sorted(out.glob(f"{prefix}*.yaml")) if out.is_dir() else []:
        label = path.name[len(prefix):-len(".yaml")]
        try:
            gen.variant_metadata(label)
        except ValueError:
            continue
        labels.append(label)
    return labels


def merged(bench: gen.Benchmark, labels: list[str]) -> gen.Benchmark:
    """`bench` with the variants of `labels` too: the group then lists every variant on disk."""
    frames, fps_variants = list(bench.frames or ()), list(bench.fps_variants)
    for label in labels:
        meta = gen.variant_metadata(label)
        if "lvu_num_frames" in meta:
            frames.append(meta["lvu_num_frames"])
        else:
            fps_variants.append((meta["lvu_fps"], meta["lvu_max_frames"]))
    return replace(bench, frames=tuple(sorted(set(frames))), fps_variants=tuple(sorted(set(fps_variants))))


def main(argv=None) -> int:
    ns = build_parser().parse_args(argv)
    problems = _usage_problems(ns)
    if problems:  # before the task index is built (seconds): a typo costs nothing
        print(f"lvu-ext variants: {'; '.join(problems)}", file=sys.stderr)
        return 2
    fps_variants = ((ns.fps, ns.max_frames),) if ns.fps is not None else ()
    from lmms_eval.tasks import TaskManager
    from loguru import logger

    logger.remove()  # TaskManager logs every YAML it cannot index at DEBUG
    logger.add(sys.stderr, level="WARNING")
    index = TaskManager(verbosity="ERROR").task_index
    specs = []
    for task in dict.fromkeys(ns.tasks):
        try:
            specs.append(spec_for(task, index, ns.frames, fps_variants))
        except NotVariable as exc:
            problems.append(str(exc))
    if problems:
        print(f"lvu-ext variants: {'; '.join(problems)}", file=sys.stderr)
        return 2
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, bench in enumerate(specs):
        earlier = [label for label in existing_labels(out, bench.base) if label not in gen.variant_labels(bench)]
        if earlier:
            specs[i] = bench = merged(bench, earlier)
            print(f"{out} already has {', '.join(gen.task_name(bench.base, label) for label in earlier)}: "
                  f"the group {gen.group_name(bench.base)} lists them too")
        for name, text in files_for(bench).items():
            (out / name).write_text(text, encoding="utf-8")
            print(f"wrote {out / name}")
    print(f"run them with: lmms-eval --include_path {out} --tasks " + ",".join(gen.group_name(b.base) for b in specs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
