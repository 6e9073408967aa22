"""Why a row's lmms-eval run failed, in the words of its log: the `lvu_ext:` lines that
refuse or fail and the last line of each traceback of the last exception chain, colour
codes stripped, whole (never a tail cut to a length that drops the cause)."""

from __future__ import annotations

import re
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# loguru's "2026-01-01 12:00:00 | ERROR    | module:function:12 - " prefix
_LOGURU = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \| \w+\s*\| \S+ - ")
_TRACEBACK = "Traceback (most recent call last):"
_CHAINED = ("The above exception was the direct cause", "During handling of the above exception")
# lvu_ext also logs progress ("lvu_ext: resume journal ..."): only its refusals and failures are causes
_FATAL = re.compile(r"unknown|invalid|impossible|could not|cannot|failed|refus|given more than once|error", re.IGNORECASE)


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def cause_lines(log_text: str) -> list[str]:
    """The lines that say why the run failed, in log order, each once."""
    raw = [strip_ansi(line).rstrip() for line in log_text.splitlines()]
    found = [line for line in (_LOGURU.sub("", r).strip() for r in raw) if line.startswith("lvu_ext:") and _FATAL.search(line)]
    found += _last_chain(raw)
    if not found:  # no traceback: the last line naming an error, else the last line
        lines = [_LOGURU.sub("", r).strip() for r in raw if r.strip()]
        errors = [line for line in lines if re.search(r"error", line, re.IGNORECASE)]
        found = errors[-1:] or lines[-1:]
    found = list(dict.fromkeys(found))
    # "lvu_ext: the model could not be built" is said again with its cause: keep the longer line
    return [line for line in found if not any(line != other and line in other for other in found)]


def _last_chain(raw: list[str]) -> list[str]:
    """The closing line of every traceback in the log's last exception chain."""
    chain: list[str] = []
    i = 0
    while i < len(raw):
        if raw[i].startswith(_TRACEBACK):
            j = i + 1
            while j < len(raw) and (raw[j].startswith((" ", "\t", "> File")) or not raw[j].strip()):
                j += 1  # frames are indented (loguru marks the raising one "> File"); then the exception
            closing = raw[j].strip() if j < len(raw) else ""
            linked = any(raw[k].startswith(_CHAINED) for k in range(max(0, i - 3), i))
            chain = ([*chain] if linked else []) + ([closing] if closing else [])
            i = j
        i += 1
    return chain


def cause(log_path: Path) -> str:
    text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.is_file() else ""
    return " | ".join(cause_lines(text)) or "no output"
