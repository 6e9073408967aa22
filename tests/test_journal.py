"""Resume journal, in process: answers (generate_until and loglikelihood) are journaled as
they are made and served from the journal by the next instance without running the model;
failed documents are not journaled; other model settings or a changed prompt recompute."""

import json

import pytest

from conftest import make_lm, make_request

GEN = {"max_new_tokens": 3, "temperature": 0}


def requests(lm, video, missing):
    return [make_request(lm, video, "What happens?", GEN, doc_id=0),
            make_request(lm, missing, "What happens?", GEN, doc_id=1),
            make_request(lm, video, "What happens?", request_type="loglikelihood", continuation=" yes", doc_id=2)]


def answer(lm, reqs):
    return lm.generate_until(reqs[:2]), lm.loglikelihood(reqs[2:])


def no_model(*args, **kwargs):
    raise AssertionError("the model ran for a journaled request")


def test_journal_round_trip(tiny_checkpoints, sample_video, tmp_path, monkeypatch):
    ckpt, journal = tiny_checkpoints["llava_onevision"], tmp_path / "journal"
    first = make_lm(ckpt, num_frames=4, resume_journal=str(journal))
    gen, ll = answer(first, requests(first, str(sample_video), str(tmp_path / "missing.mp4")))
    path = journal / "lvu_ext_journal_rank0.jsonl"
    lines = path.read_text().splitlines()
    assert [json.loads(line)["doc_id"] for line in lines] == [0, 2]  # the failed doc 1 is retried next time
    with path.open("a") as fh:
        fh.write('{"key": "cut short by a ki')  # the kill can leave half a line

    again = make_lm(ckpt, num_frames=4, resume_journal=str(journal), record_path=str(tmp_path / "again.jsonl"))
    monkeypatch.setattr(again.model, "generate", no_model)
    monkeypatch.setattr(again.model, "forward", no_model)
    assert answer(again, requests(again, str(sample_video), str(tmp_path / "missing.mp4"))) == (gen, ll)
    recs = [json.loads(line) for line in (tmp_path / "again.jsonl").read_text().splitlines()]
    assert [(r["doc_id"], r["status"], r.get("from_journal")) for r in recs] == [(0, "ok", True), (1, "failed", None), (2, "ok", True)]


@pytest.mark.parametrize("change", [{"num_frames": 6}, {"rope_ext": "vcwe"}, {"prompt": "What else?"}])
def test_other_settings_or_prompt_recompute(tiny_checkpoints, sample_video, tmp_path, change):
    ckpt, journal = tiny_checkpoints["llava_onevision"], tmp_path / "journal"
    first = make_lm(ckpt, num_frames=4, resume_journal=str(journal))
    first.generate_until([make_request(first, str(sample_video), "What happens?", GEN)])
    model_args = {k: v for k, v in change.items() if k != "prompt"}
    other = make_lm(ckpt, **{"num_frames": 4, "resume_journal": str(journal), **model_args})
    other.generate_until([make_request(other, str(sample_video), change.get("prompt", "What happens?"), GEN)])
    assert len((journal / "lvu_ext_journal_rank0.jsonl").read_text().splitlines()) == 2  # computed and journaled again


@pytest.mark.parametrize("setting,argv,expected", [
    ("auto", ["/venv/bin/lmms-eval", "--model", "lvu_ext", "--use_cache", "/c"], "/c"),
    ("auto", ["/site-packages/lmms_eval/__main__.py", "-c", "/c/cache.db"], "/c"),  # the harness's short alias, a .db path
    ("auto", ["/venv/bin/lmms-eval", "--model", "lvu_ext"], None),  # no --use_cache: no journal
    ("auto", ["pytest", "-c", "pytest.ini"], None),  # someone else's -c
    ("off", ["/venv/bin/lmms-eval", "--use_cache", "/c"], None),
    ("/j", ["/venv/bin/lmms-eval"], "/j"),
])
def test_journal_location(setting, argv, expected):
    from lmms_eval_plugin.bookkeeping.journal import journal_dir

    assert journal_dir(setting, argv) == expected


def test_answer_after_a_line_cut_by_a_kill_is_kept(tmp_path):
    """A kill mid-write leaves half a line; the next run's answers must not be glued onto it."""
    import json

    from lmms_eval_plugin.bookkeeping.journal import ResumeJournal

    whole = json.dumps({"key": "a", "task": "t", "doc_id": 0, "response": "A", "record": {}})
    (tmp_path / "lvu_ext_journal_rank0.jsonl").write_text(whole + "\n" + whole.replace('"a"', '"b"')[:25])
    journal = ResumeJournal(str(tmp_path), 0)
    assert set(journal.entries) == {"a"}
    journal.add("c", "C", {"task": "t", "doc_id": 2})
    assert set(ResumeJournal(str(tmp_path), 0).entries) == {"a", "c"}
