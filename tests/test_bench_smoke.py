"""`lvu-ext bench` in a reduced form: tiny model, 4 and 8 frames, all four cases, CPU.
Checks the outputs and that method-off answers what stock transformers answers; no
timing assertions (CI machines vary)."""

import json

import pytest

from lmms_eval_plugin.bench.cli import main
from lmms_eval_plugin.bench.memory.cases import CASES

ROW_KEYS = {"case", "frames", "peak_mem_gb", "baseline_mem_gb", "prefill_s", "visual_tokens", "status",
            "mem_ratio_vs_stock", "prefill_ratio_vs_stock", "same_output_as_stock"}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("bench_work")


def _report(out):
    assert {p.name for p in out.iterdir()} >= {"bench.json", "bench.md", "bench.png"}
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return json.loads((out / "bench.json").read_text())


def test_all_cases_tiny_inline(tmp_path, work):
    out = tmp_path / "out"
    rc = main(["--arch", "tiny", "--device", "cpu", "--frames", "4,8", "--isolation", "inline", "--max-new-tokens", "6",
               "--clip-frames", "16", "--out", str(out), "--work-dir", str(work)])
    assert rc == 0
    report = _report(out)
    rows = report["rows"]
    assert [(r["case"], r["frames"]) for r in rows] == [(c, f) for f in (4, 8) for c in CASES]
    for r in rows:
        assert ROW_KEYS <= set(r)
        assert r["status"] == "ok", r
        assert r["peak_mem_gb"] > 0 and r["prefill_s"] > 0
        assert r["prefill_logit_rows"] == 1  # generate computes the last position's logits only
    by = {(r["case"], r["frames"]): r for r in rows}
    for f in (4, 8):
        stock, off, default = by["stock", f], by["lvu_ext_off", f], by["lvu_ext_default", f]
        assert stock["visual_tokens"] == off["visual_tokens"] == f * 196 + 1  # 14x14 per frame + image_newline
        assert default["visual_tokens"] < stock["visual_tokens"]
        assert off["same_output_as_stock"] is True and off["same_prefill_logits_as_stock"] is True
        assert off["new_tokens"] == stock["new_tokens"] and len(stock["new_tokens"]) > 0
        assert off["mem_ratio_vs_stock"] is not None
    md = (out / "bench.md").read_text()
    assert "| 8 | lvu_ext_default |" in md and "## Goals" in md
    statuses = {g["goal"]: g["status"] for g in report["goals"]}
    assert statuses["cpu: method-off outputs identical to stock"] == "met"
    assert all(s == "not measured" for g, s in statuses.items() if g.startswith("gpu 7B"))

    # --merge: extend the table with one more frame count without re-running the rest
    merged = tmp_path / "merged"
    rc = main(["--arch", "tiny", "--device", "cpu", "--frames", "12", "--cases", "lvu_ext_default", "--isolation", "inline",
               "--max-new-tokens", "2", "--merge", str(out / "bench.json"), "--clip-frames", "16", "--out", str(merged), "--work-dir", str(work)])
    assert rc == 0
    report = _report(merged)
    assert len(report["rows"]) == 2 * len(CASES) + 1 and report["rows"][-1]["frames"] == 12
    assert report["rows"][-1]["mem_ratio_vs_stock"] is None and any("12 frames" in n for n in report["notes"])


def test_oom_rows_are_reported_not_dropped(tmp_path, work):
    """A child over the memory limit is killed and reported as OOM; larger frame counts
    of that case are listed as skipped."""
    out = tmp_path / "out"
    main(["--arch", "tiny", "--device", "cpu", "--frames", "4,8", "--cases", "stock", "--isolation", "process",
          "--mem-limit-gb", "0.05", "--clip-frames", "16", "--out", str(out), "--work-dir", str(work)])
    rows = _report(out)["rows"]
    assert [(r["case"], r["frames"], r["status"]) for r in rows] == [("stock", 4, "OOM"), ("stock", 8, "skipped")]


def test_seven_b_code_path_shrunk(tmp_path, work, capsys):
    """The GPU path (config-only folder, random weights built on the device, one process,
    LvuExt handed the in-memory model) with toy widths on the CPU, and the 7B dry run."""
    out = tmp_path / "out"
    rc = main(["--arch", "7b", "--shrink", "--device", "cpu", "--frames", "4", "--cases", "stock,lvu_ext_off",
               "--isolation", "inline", "--max-new-tokens", "4", "--clip-frames", "16", "--out", str(out), "--work-dir", str(work)])
    assert rc == 0
    rows = _report(out)["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[1]["same_output_as_stock"] is True
    capsys.readouterr()
    assert main(["--arch", "7b", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "8,030,348,832" in printed  # LLaVA-OneVision-7B: Qwen2-7B + SigLIP-so400m (26 layers) + projector
