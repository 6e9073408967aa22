"""Per-request records: what the method did for each document.

lmms-eval's samples file has no room for extra per-sample fields, so lvu_ext writes a
JSONL beside the results (`<output_path>/lvu_ext_requests[_rankN].jsonl`) and logs the
same line. `record_path` overrides the location.
"""

from __future__ import annotations

import json
import os
import sys

from lmms_eval_plugin.argv import flag_value


def _cli_output_path(argv: list[str]) -> str | None:
    return flag_value(argv, "--output_path")


def default_record_path(argv: list[str] | None = None) -> str | None:
    """`<--output_path>/lvu_ext_requests.jsonl` when run by the lmms-eval CLI (the
    recorder adds `_rankN` under data parallel)."""
    out = _cli_output_path(sys.argv if argv is None else argv)
    return os.path.join(out, "lvu_ext_requests.jsonl") if out else None


class RequestRecorder:
    def __init__(self, path: str | None, rank: int = 0, world_size: int = 1):
        if path and world_size > 1:
            root, ext = os.path.splitext(path)
            path = f"{root}_rank{rank}{ext or '.jsonl'}"
        self.path = path
        self.failures: list[dict] = []
        self.run_manifest: str | None = None  # lvu_ext_run.json of this run, named in every record
        self.run_id: str | None = None  # tells this run's records from another's in the same file
        self.extra: dict = {}  # fields of the request being answered (which process answers it, ...)
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def write(self, record: dict) -> None:
        if record.get("status") == "failed":
            self.failures.append(record)
        record = {**record, **self.extra}
        if self.path:
            if self.run_manifest:
                record = dict(record, run_manifest=self.run_manifest)
            if self.run_id:
                record = dict(record, run_id=self.run_id)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")

    def log_failures(self) -> None:
        """One warning naming the documents that failed on their video, if any."""
        from loguru import logger

        if self.failures:
            first = ", ".join(f"{f['task']}#{f['doc_id']}" for f in self.failures[:5])
            logger.warning(f"lvu_ext: {len(self.failures)} document(s) failed on their video (first: {first}); they score as wrong answers")
