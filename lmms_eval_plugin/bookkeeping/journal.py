"""Resume journal: a run killed half way recomputes only the documents it had not answered.

lmms-eval's `--use_cache DIR` (ResponseCache.execute) hands every uncached request to the
model in one call and stores the answers only after that call returns, so a run killed
after nine hours has cached nothing. lvu_ext therefore appends each answer, as it is
made, to `DIR/lvu_ext_journal_rank{rank}.jsonl` (one JSON line, flushed and fsync'ed),
and answers a request found there without running the model.

An entry is keyed by request type, task, doc id, idx, a hash of the prompt, the
continuation or generation kwargs and the frame plan, and a fingerprint of the model
args, so a changed prompt, frame count or method setting is recomputed. Failed documents
(video errors) are never journaled, so they are retried. Sampled generations
(`do_sample`) are not journaled either, as the harness does not cache them.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os

from lmms_eval_plugin import __version__
from lmms_eval_plugin.argv import use_cache_value

# Test hook: after N journaled answers the process dies at once, as under SIGKILL
# (no cleanup, nothing flushed by the harness), to test resuming deterministically.
STOP_AFTER_ENV = "LVU_EXT_TEST_STOP_AFTER"


def _sha(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=True, default=str).encode()).hexdigest()


def journal_dir(setting: str, argv: list[str]) -> str | None:
    """Where the journal lives: `resume_journal=auto` follows `--use_cache`, `off` disables it,
    anything else is a directory."""
    if setting == "off":
        return None
    if setting != "auto":
        return setting
    cache = use_cache_value(argv)
    if not cache:
        return None
    cache = os.path.abspath(cache)
    return os.path.dirname(cache) if cache.endswith(".db") else cache  # as the harness reads it


def model_fingerprint(settings: dict) -> str:
    """The model args that can change an answer, and the lvu_ext version."""
    return _sha([settings, __version__])[:16]


def request_key(request_type: str, task: str, doc_id, idx: int, content, model_fingerprint: str) -> str:
    return _sha([request_type, task, doc_id, idx, _sha(content), model_fingerprint])


class ResumeJournal:
    def __init__(self, directory: str, rank: int):
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, f"lvu_ext_journal_rank{rank}.jsonl")
        self.entries: dict[str, dict] = {}
        # Every rank's file: a resumed run may use a different number of processes.
        for path in sorted(glob.glob(os.path.join(directory, "lvu_ext_journal_rank*.jsonl"))):
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by the kill
                        continue
                    self.entries[entry["key"]] = entry
        self._end_cut_line()
        self._written = 0
        self._stop_after = int(os.environ.get(STOP_AFTER_ENV) or 0)

    def _end_cut_line(self) -> None:
        """A kill can leave this rank's last line half written; without a newline after it the
        next answer would be glued onto it and lost to the reader."""
        if os.path.exists(self.path) and os.path.getsize(self.path):
            with open(self.path, "rb+") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def add(self, key: str, response, record: dict) -> None:
        entry = {"key": key, "task": record.get("task"), "doc_id": record.get("doc_id"), "response": response, "record": record}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.entries[key] = entry
        self._written += 1
        if self._stop_after and self._written >= self._stop_after:
            os._exit(86)
