"""The request guard in process: a request `generate` rejects, or a loglikelihood
continuation that cannot be tokenized, ends the run with a RequestFailedError (a
SystemExit, so lmms-eval cannot swallow it) whose one line names the task, the document
and the exception; the failed request is recorded. (Through the CLI:
test_request_failure_cli.py.)"""

from __future__ import annotations

import json

import pytest

from conftest import make_lm, make_request
from lmms_eval_plugin.failures.errors import FatalRunError, RequestFailedError
from lmms_eval_plugin.failures.request_guard import guarded_batch


@pytest.fixture(scope="module")
def lm(tiny_checkpoints, tmp_path_factory):
    return make_lm(tiny_checkpoints["llava_onevision"], record_path=str(tmp_path_factory.mktemp("guard") / "records.jsonl"),
                   num_frames=4)


def last_record(lm) -> dict:
    with open(lm.recorder.path, encoding="utf-8") as fh:
        return json.loads(fh.read().splitlines()[-1])


def test_generation_kwarg_generate_rejects(lm, sample_video):
    request = make_request(lm, str(sample_video), "What is shown?", {"max_new_tokens": -1}, task="guard_gen", doc_id=3)
    with pytest.raises(RequestFailedError) as err:
        lm.generate_until([request])
    message = str(err.value)
    assert isinstance(err.value, SystemExit) and isinstance(err.value, FatalRunError)
    assert message.startswith("lvu_ext: guard_gen doc 3: ValueError: ") and "max_new_tokens" in message
    assert "\n" not in message and "--use_cache" in message
    record = last_record(lm)
    assert (record["task"], record["doc_id"], record["status"]) == ("guard_gen", 3, "error")
    assert record["error"].startswith("ValueError: ") and "max_new_tokens" in record["error"]


def test_continuation_that_does_not_tokenize(lm, sample_video):
    request = make_request(lm, str(sample_video), "Which letter?", request_type="loglikelihood", continuation="", task="guard_ll", doc_id=5)
    with pytest.raises(RequestFailedError, match=r"^lvu_ext: guard_ll doc 5: ValueError: continuation '' does not tokenize"):
        lm.loglikelihood([request])


def test_failure_outside_a_request_names_the_request_type():
    class Model:
        journal = None

        @guarded_batch("generate_until")
        def generate_until(self, requests):
            raise KeyError("scheduler state")

        @guarded_batch("loglikelihood")
        def loglikelihood(self, requests):
            raise SystemExit("lvu_ext: an exit of its own")  # e.g. out of memory: passes untouched

    with pytest.raises(RequestFailedError, match=r"^lvu_ext: generate_until of 0 requests \(\): KeyError: 'scheduler state'"):
        Model().generate_until([])
    with pytest.raises(SystemExit, match="an exit of its own") as err:
        Model().loglikelihood([])
    assert not isinstance(err.value, RequestFailedError)
