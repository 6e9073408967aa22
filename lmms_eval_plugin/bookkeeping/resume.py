"""The resume journal as a run uses it: the key of each request, answers recalled from an
earlier run (recorded with `from_journal`), new answers recorded and journaled, and the
count of what was not recomputed."""

from __future__ import annotations

from dataclasses import asdict

from loguru import logger as eval_logger

from lmms_eval_plugin.bookkeeping.journal import ResumeJournal, journal_dir, model_fingerprint, request_key

# Model args that cannot change an answer: a resumed run may change them.
NOT_IN_FINGERPRINT = ("record_path", "on_video_error", "resume_journal", "vision_batch", "video_cache", "prefetch", "decode_workers", "shard")


class ResumeSession:
    def __init__(self, journal: ResumeJournal | None, fingerprint: str, recorder):
        self.journal = journal
        self.fingerprint = fingerprint
        self.recorder = recorder

    @classmethod
    def open(cls, args, argv: list[str], rank: int, recorder) -> "ResumeSession":
        settings = {k: v for k, v in asdict(args).items() if k not in NOT_IN_FINGERPRINT}
        directory = journal_dir(args.resume_journal, argv)
        journal = ResumeJournal(directory, rank) if directory is not None else None
        if journal is not None:
            eval_logger.info(f"lvu_ext: resume journal {journal.path} ({len(journal.entries)} answers on record)")
        return cls(journal, model_fingerprint(settings), recorder)

    def key(self, request, request_type: str, content) -> str | None:
        if self.journal is None:
            return None
        _, _, _, doc_id, task, _ = request.args
        return request_key(request_type, task, doc_id, request.idx, content, self.fingerprint)

    def recall(self, key: str | None):
        """The answer on record for `key` (its record rewritten with from_journal), or None."""
        entry = self.journal.get(key) if key else None
        if entry is None:
            return None
        self.recorder.write(dict(entry["record"], from_journal=True))
        return entry["response"]

    def answered(self, key: str | None, response, record: dict) -> None:
        self.recorder.write(record)
        if key:
            self.journal.add(key, response, record)

    def log_resumed(self, resumed: int, total: int, request_type: str) -> None:
        if self.journal is not None:
            eval_logger.info(
                f"lvu_ext: {resumed} of {total} {request_type} requests answered from the resume journal {self.journal.path} "
                f"(not recomputed)"
            )
