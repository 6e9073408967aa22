"""Any exception while answering one request ends the run with a non-zero exit status.

lmms-eval catches every `Exception` from the model, logs it and exits 0, so a run whose
`generate` rejected a generation kwarg looked like a success. Here the exception becomes
a `RequestFailedError` (a SystemExit, see errors.py) whose one line names the task, the
document and the exception and says how to resume. Answers made before it are already on
disk: the resume journal appends and fsyncs each one as it is made (journal.py).

Errors lvu_ext handles on purpose pass through untouched: a broken video is dealt with
before this guard sees it (on_video_error), and the out-of-memory, on_video_error=raise
and model-arg exits are SystemExits already.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

from loguru import logger as eval_logger

from lmms_eval_plugin.failures.errors import RequestFailedError


def resume_hint(journal) -> str:
    if journal is None:
        return ("nothing was kept for a resume: run with --use_cache DIR, and after a failure run the same command again "
                "to compute only the documents without an answer")
    return (f"the {len(journal.entries)} answers made so far are in {journal.path}; fix the cause and run the same command "
            f"again (same --use_cache, or resume_journal=DIR) to compute only the documents without an answer")


def stop_message(where: str, exc: BaseException, journal) -> str:
    detail = " ".join(str(exc).split())[:300]  # one line, even for multi-line exception texts
    return f"lvu_ext: {where}: {type(exc).__name__}: {detail} -> run stopped; {resume_hint(journal)}"


def failure_message(task, doc_id, exc: BaseException, journal) -> str:
    return stop_message(f"{task} doc {doc_id}", exc, journal)


@contextmanager
def guard_request(task, doc_id, journal, recorder):
    """Wrap the work of one request: an Exception ends the run (after recording the failed
    request in the per-request records); SystemExit / KeyboardInterrupt pass through."""
    try:
        yield
    except Exception as exc:
        message = failure_message(task, doc_id, exc, journal)
        eval_logger.opt(exception=exc).error(message)  # the traceback, for whoever debugs it
        recorder.write({"task": task, "doc_id": doc_id, "status": "error", "error": f"{type(exc).__name__}: {exc}"})
        raise RequestFailedError(message) from None


def guarded_batch(request_type: str):
    """Decorator for `generate_until` / `loglikelihood`: an exception outside any one
    request's step (ordering, prefetching) ends the run the same way, naming the request type."""

    def decorate(method):
        @functools.wraps(method)
        def run(self, requests):
            try:
                return method(self, requests)
            except Exception as exc:
                tasks = sorted({str(r.args[4]) for r in requests if len(getattr(r, "args", ())) > 4})
                where = f"{request_type} of {len(requests)} requests ({', '.join(tasks[:5])})"
                message = stop_message(where, exc, getattr(self, "journal", None))
                eval_logger.opt(exception=exc).error(message)
                raise RequestFailedError(message) from None

        return run

    return decorate
