"""One JSON line per finished video in the output folder, so an interrupted or repeated
check skips what it already read. A line is reused only while its file is unchanged (size
and modification time) and the check is the same (frame plan, reader, deadline, --verify); a torn
last line (the check was killed mid-write) is ignored."""

from __future__ import annotations

import json
import os
from pathlib import Path

JOURNAL = "videos.jsonl"


def identity(path: str, plan: str, reader: str, timeout: float | str, verify: bool = False) -> dict:
    try:
        st = os.stat(path)
        size, mtime = st.st_size, st.st_mtime_ns
    except OSError:  # missing now: stays a failure until the file appears
        size = mtime = None
    return {"path": path, "plan": plan, "reader": reader, "timeout": timeout, "verify": verify, "size_bytes": size, "mtime_ns": mtime}


def load(folder: Path) -> dict[tuple[str, str], dict]:
    """(path, plan) -> {"identity", "result"} of the journal's last line for it."""
    done = {}
    journal = folder / JOURNAL
    if not journal.exists():
        return done
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            done[record["identity"]["path"], record["identity"]["plan"]] = record
        except (ValueError, KeyError, TypeError):
            continue
    return done


def reusable(record: dict | None, ident: dict) -> bool:
    return record is not None and record.get("identity") == ident


class Journal:
    def __init__(self, folder: Path, fresh: bool = False):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / JOURNAL
        torn = not fresh and path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
        self._fh = open(path, "w" if fresh else "a", encoding="utf-8")
        if torn:  # a check killed mid-line: end that line so the next one parses
            self._fh.write("\n")

    def append(self, ident: dict, result: dict) -> None:
        self._fh.write(json.dumps({"identity": ident, "result": result}) + "\n")
        self._fh.flush()  # one line per video on disk: a killed check resumes from here

    def close(self) -> None:
        self._fh.close()
