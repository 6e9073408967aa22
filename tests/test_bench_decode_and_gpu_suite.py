"""`lvu-ext bench --decode` and `lvu-ext bench --gpu-suite --reduced` on the CPU: the code
paths of the decoder table and of the GPU suite run in CI, so neither can rot before a GPU
is lent. No timing assertions (CI machines vary)."""

from __future__ import annotations

import json

import pytest

from lmms_eval_plugin.bench.cli import main


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("bench_clips")


def test_decode_bench_compares_readers_on_generated_clips(tmp_path, work):
    out = tmp_path / "decode"
    assert main(["--decode", "--clips", "quick", "--frames", "8,12", "--out", str(out), "--work-dir", str(work)]) == 0
    assert {"decode.json", "decode.md", "decode.png"} <= {p.name for p in out.iterdir()}
    report = json.loads((out / "decode.json").read_text())
    clips = {c["name"]: c for c in report["clips"]}
    h264 = next(c for c in clips.values() if c["codec"] == "h264")
    assert h264["profile"] == "High" and h264["b_frames_in_first_120"] > 0  # realistic: B-frames, as x264 presets make them
    assert any(c["name"].endswith("_mkv") for c in clips.values())
    rows = {(r["clip"], r["backend"], r["frames"]): r for r in report["rows"]}
    for clip in clips:
        for n in (8, 12):
            assert rows[(clip, "decord", n)]["returned"] == n
            pyav = rows[(clip, "pyav", n)]
            # lvu_ext's two readers sample the same indices and give the same pixels
            assert pyav["indices_equal"] is True and pyav["frames_identical"] is True
            assert rows[(clip, "pyav_threaded", n)]["frames_identical"] is True
    if "torchcodec" in report["backends"]:
        assert all("error" in r or "frames_identical" in r for r in report["rows"] if r["backend"] == "torchcodec")


def test_gpu_suite_reduced_runs_on_cpu(tmp_path, work):
    out = tmp_path / "suite"
    rc = main(["--gpu-suite", "--reduced", "--out", str(out), "--work-dir", str(work)])
    report = json.loads((out / "gpu_suite.json").read_text())
    assert rc == 0, {k: v["exit_code"] for k, v in report["parts"].items()}
    assert {"gpu_suite.json", "gpu_suite.md", "gpu_suite.png"} <= {p.name for p in out.iterdir()}
    assert (out / "gpu_suite.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    memory = report["parts"]["memory"]["data"]
    assert {r["case"] for r in memory["rows"]} == {"stock", "lvu_ext_default", "lvu_ext_default_chunked"}
    assert all(r["status"] == "ok" for r in memory["rows"])
    workload = report["parts"]["workload"]["data"]
    assert [r["case"] for r in workload["rows"]] == ["llava_hf", "workers_off", "workers_default"]
    assert all(r["status"] == "ok" for r in workload["rows"])
    assert workload["answers"]["workers_default"] == workload["answers"]["workers_off"]  # workers change no answer
    processor = report["parts"]["processor"]["data"]
    assert processor["cuda_s"] is None and "not measured" in processor["note"]  # no GPU figures from a CPU
    assert "reduced: CPU smoke run" in (out / "gpu_suite.md").read_text()
