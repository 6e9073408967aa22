"""A document whose video could not be used: recorded as failed, then the run goes on
(`on_video_error=continue`: an empty answer, scored as wrong) or stops (`raise`)."""

from __future__ import annotations

from loguru import logger

from lmms_eval_plugin.failures.errors import DocumentVideoError


def video_failed(recorder, task, doc_id, exc, on_video_error: str) -> None:
    """`exc`: the engine's VideoError (its `path` and `reason`)."""
    message = f"lvu_ext: {task} doc {doc_id}: {exc.reason}: {exc.path}"
    recorder.write({"task": task, "doc_id": doc_id, "status": "failed", "video": exc.path, "error": exc.reason})
    if on_video_error == "raise":
        message += " (on_video_error=raise stops the run)"
        logger.error(message)
        raise DocumentVideoError(message) from None  # a SystemExit: lmms-eval would swallow an Exception and exit 0
    logger.error(message + " -> recorded as failed (empty answer, scored as wrong), continuing")
