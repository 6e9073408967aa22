"""The README's run command, through the real `lmms-eval` CLI, for both tiny families."""

import pytest

from cli_runner import TASKS, offline_env, records, results_file, run_cli, samples
from lmms_eval_plugin.method.pooling import PoolingSettings, visual_token_count
from lmms_eval_plugin.method.rope_scaling import FAMILY_VISUAL_WINDOW

DEMO_DOCS = 4


@pytest.mark.parametrize("name,family", [("tiny-random-onevision", "llava_onevision"), ("tiny-random-nextvideo", "llava_next_video")])
def test_demo_task_with_method_defaults(tmp_path, name, family):
    out = tmp_path / "out"
    run_cli(["--model", "lvu_ext", "--model_args", f"pretrained={name}", "--tasks", "lvu_demo",
             "--include_path", str(TASKS), "--output_path", str(out), "--log_samples"], offline_env(tmp_path))

    result = results_file(out)
    accuracy = result["results"]["lvu_demo"]["accuracy,none"]
    assert 0.0 <= accuracy <= 1.0
    rows = samples(out, "lvu_demo")
    assert sorted(r["doc_id"] for r in rows) == list(range(DEMO_DOCS))
    # the harness's own scoring: accuracy is the mean of the per-sample scores it logged
    assert accuracy == pytest.approx(sum(r["accuracy"] for r in rows) / DEMO_DOCS)

    # per-request record: defaults (vcwe + progressive pooling, 32 frames) on every doc
    recs = records(out / "lvu_ext_requests.jsonl")
    assert sorted(r["doc_id"] for r in recs) == list(range(DEMO_DOCS))
    grid = 27 if family == "llava_onevision" else 24
    expected_tokens = visual_token_count(family, 32, PoolingSettings("progressive"), grid, 2)
    for r in recs:
        assert r["status"] == "ok" and r["frames_sampled"] == 32
        assert r["visual_tokens"] == expected_tokens
        assert r["s"] == pytest.approx(expected_tokens / FAMILY_VISUAL_WINDOW[family], abs=1e-6)
        assert r["rope_ext"] == "vcwe" and r["pooling"] == "progressive"
