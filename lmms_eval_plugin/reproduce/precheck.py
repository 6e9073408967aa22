"""Everything a row's lmms-eval run would refuse, checked once before the first row: the
model args of every row (the harness's own parsing, then lvu_ext's own validation, as
`create_from_arg_string` and `LvuExt.__init__` do before any weight is loaded), the
include path, and every row's task in lmms-eval's index with that include path."""

from __future__ import annotations

from pathlib import Path

from lmms_eval_plugin.reproduce import commands, plan
from lmms_eval_plugin.reproduce.tables import Row

# what lmms-eval's evaluator adds to --model_args (reproduce passes --batch_size 1)
_HARNESS_CONFIG = {"batch_size": "1"}


class PrecheckError(ValueError):
    """A problem every row would hit; the message names it."""


def model_arg_problems(inv: commands.Invocation, rows: list[Row]) -> list[str]:
    from lmms_eval.utils import simple_parse_args_string

    from lmms_eval_plugin.engine.settings import pooling_settings_from, rope_settings_from
    from lmms_eval_plugin.model_args import ModelArgError, check_pretrained_exists, parse_model_args, repeated_keys

    problems: dict[str, list[str]] = {}
    for row in rows:
        text = commands.model_args(inv, row)
        try:
            if repeated_keys(text):
                raise ModelArgError(f"lvu_ext: model arg(s) given more than once: {', '.join(repeated_keys(text))} "
                                    f"(the row sets {row.model_args or 'nothing'}; --model-args adds {inv.model_args})")
            kwargs = simple_parse_args_string(text)
            clash = sorted(set(kwargs) & set(_HARNESS_CONFIG))
            if clash:
                raise ModelArgError(f"lvu_ext: model arg(s) {', '.join(clash)} are set by lmms-eval's own options (--batch_size)")
            args = parse_model_args(**kwargs, **_HARNESS_CONFIG)
            rope_settings_from(args, None)
            pooling_settings_from(args)
            check_pretrained_exists(args.pretrained)
        except (ModelArgError, ValueError) as exc:
            problems.setdefault(str(exc), []).append(row.id)
    return [f"{msg} (row(s) {', '.join(ids)})" for msg, ids in problems.items()]


def task_problems(include_path: str, rows: list[Row]) -> list[str]:
    if not Path(include_path).is_dir():
        return [f"--include-path {include_path}: no such folder"]
    out = []
    for task in dict.fromkeys(row.task for row in rows):
        try:
            plan.task_config(task, include_path)
        except KeyError as exc:
            out.append(exc.args[0])
        except Exception as exc:  # a YAML whose functions do not import, ...
            out.append(f"task {task}: its YAML does not load: {type(exc).__name__}: {exc}")
    return out


def check(inv: commands.Invocation, rows: list[Row], model_args: bool = True, tasks: bool = True) -> None:
    problems = (model_arg_problems(inv, rows) if model_args else []) + (task_problems(inv.include_path, rows) if tasks else [])
    if problems:
        raise PrecheckError("checked before the first row, nothing was run: " + "; ".join(problems))
