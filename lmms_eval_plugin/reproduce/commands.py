"""The lmms-eval command of each row: what `--dry-run` prints and what the run executes,
the same argv in both, so a pasted line reproduces the row exactly."""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from lmms_eval_plugin.reproduce.tables import Row

# The paper scored through lmms-eval's `llava_onevision` model, which prompts with a
# "You are a helpful assistant." system turn (README, "The paper's settings as model args").
PAPER_SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass(frozen=True)
class Invocation:
    pretrained: str
    out: Path  # absolute
    include_path: str
    limit: str | None = None
    processes: int = 1
    system_prompt: str = PAPER_SYSTEM_PROMPT
    model_args: str = ""  # appended to every row's (device_map, attn_implementation, ...)
    frame_cache: str | None = None  # the rows' shared frame cache (docs/frame-cache.md): each video decoded once per table; None = off


def row_dir(inv: Invocation, row: Row) -> Path:
    return inv.out / "rows" / row.id


def model_args(inv: Invocation, row: Row) -> str:
    parts = [f"pretrained={inv.pretrained}", row.model_args]
    if inv.system_prompt:
        parts.append(f"system_prompt={inv.system_prompt}")
    # the journal lets a row killed part way resume at the document it stopped on
    parts.append(f"resume_journal={row_dir(inv, row) / 'journal'}")
    if inv.frame_cache and "frame_cache=" not in f",{inv.model_args}":  # the user's own --model-args frame_cache wins
        parts.append(f"frame_cache={inv.frame_cache}")
        if "frame_cache_stage=" not in f",{inv.model_args}":
            parts.append(f"frame_cache_stage={frame_cache_stage(inv)}")
    if inv.model_args:
        parts.append(inv.model_args)
    return ",".join(p for p in parts if p)


def frame_cache_stage(inv: Invocation) -> str:
    """What the rows' frame cache keeps: the user's own frame_cache_stage in --model-args (the
    last, as lmms-eval keeps it), else `processed`: every row runs the one checkpoint, so its
    processor's resized frames serve them all (smaller than the decoded frames, and a hit
    skips the resize: docs/frame-cache.md)."""
    given = [item.split("=", 1)[1].strip() for item in inv.model_args.split(",") if item.strip().startswith("frame_cache_stage=")]
    return given[-1] if given else "processed"


def lmms_eval_argv(inv: Invocation, row: Row) -> list[str]:
    if inv.processes > 1:
        head = ["accelerate", "launch", "--multi_gpu", "--num_processes", str(inv.processes), "-m", "lmms_eval"]
    else:
        head = ["lmms-eval"]
    argv = head + ["--model", "lvu_ext", "--model_args", model_args(inv, row), "--tasks", row.task,
                   "--include_path", inv.include_path, "--batch_size", "1",
                   "--output_path", str(row_dir(inv, row)), "--log_samples"]
    if inv.limit is not None:
        argv += ["--limit", str(inv.limit)]
    return argv


def shell_line(argv: list[str]) -> str:
    return shlex.join(argv)


def executable_argv(argv: list[str]) -> list[str]:
    """The argv with its program taken from this interpreter's environment when it has one
    (a venv not on PATH), else from PATH: the same program a pasted line runs once the
    environment is activated."""
    sibling = Path(sys.executable).with_name(argv[0])
    program = str(sibling) if sibling.exists() else (shutil.which(argv[0]) or argv[0])
    return [program, *argv[1:]]
