"""`lvu-ext report` pieces on results files written by the real harness: one `lmms-eval
--model dummy` run over the local copies of MLVU / Video-MME / LongVideoBench.

Expected values come from that run's results JSON, the numbers the harness *logged* for the
sub-scores it does not store, the fixture's docs (dummy always answers "A"), and the packaged
reference file; nothing is a copied output of the report itself."""

from __future__ import annotations

import ast
import csv
import json
import logging
import re
import shutil
from pathlib import Path

import pytest

from benchmark_fixtures import build_local_benchmark, read_outputs, run_lmms_eval
from lmms_eval_plugin.report import cli, collect, references
from lmms_eval_plugin.report.benchmarks import BENCHMARKS

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Column -> harness category, written out here (not imported) so a wrong mapping fails.
# MLVU: the paper's Table 2 abbreviations; LongVideoBench: Table 3's duration groups.
MLVU_DEV_TYPES = (("TR", "topic_reasoning"), ("AR", "anomaly_reco"), ("NQA", "needle"), ("ER", "ego"), ("PQA", "plotQA"), ("AO", "order"), ("AC", "count"))
VIDEOMME_DURATIONS = (("Short", "short"), ("Medium", "medium"), ("Long", "long"))
LVB_GROUPS = (("(8,15]", 15), ("(15,60]", 60), ("(180,600]", 600), ("(900,3600]", 3600))


@pytest.fixture(scope="module")
def dummy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("report_unit")
    local = {b: build_local_benchmark(root, b) for b in ("mlvu_dev", "videomme", "longvideobench_val_v")}
    lvb = local["longvideobench_val_v"]
    tasks = [local["mlvu_dev"].task_for("f32"), local["videomme"].task_for("f64"), lvb.task_for("f32"), lvb.task_for("1fps_max512")]
    out = root / "out_dummy"
    proc = run_lmms_eval(
        ["--model", "dummy", "--tasks", ",".join(tasks), "--include_path", lvb.include_path_arg, "--output_path", str(out), "--log_samples"],
        env=lvb.env,
    )
    log = ANSI.sub("", proc.stdout + proc.stderr)
    assert proc.returncode == 0 and "Error during evaluation" not in log, log[-3000:]
    results, samples = read_outputs(out)
    return {"root": root, "out": out, "local": local, "tasks": tasks, "results": results, "samples": samples, "log": log}


def _by_task(records):
    return {r.task: r for r in records}


def test_headline_scores_are_the_harness_values_in_percent(dummy_run):
    records = _by_task(collect.collect([str(dummy_run["out"])]))
    results = dummy_run["results"]["results"]
    assert set(records) == set(dummy_run["tasks"])
    for task, rec in records.items():
        harness = results[task][f"{rec.benchmark.metric},none"]
        # LongVideoBench's aggregation returns a 0-1 fraction; the others return percent.
        scale = 100.0 if rec.benchmark.metric == "lvb_acc" else 1.0
        assert rec.scores[rec.benchmark.main] == pytest.approx(harness * scale)
        assert 0.0 <= rec.scores[rec.benchmark.main] <= 100.0
        assert rec.model == "dummy" and rec.settings == "default"


def test_frames_come_from_the_task_metadata(dummy_run):
    records = _by_task(collect.collect([str(dummy_run["out"])]))
    configs = dummy_run["results"]["configs"]
    for task, rec in records.items():
        meta = configs[task]["metadata"]
        if "lvu_fps" in meta:
            assert (rec.frames.fps, rec.frames.count) == (meta["lvu_fps"], meta["lvu_max_frames"])
            assert rec.frames.label == f"{meta['lvu_fps']:g}fps<={meta['lvu_max_frames']}"
        else:
            assert rec.frames.count == meta["lvu_num_frames"] and rec.frames.fps is None


def _logged_percent(log: str, pattern: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(pattern, log)}


def test_subscores_match_what_the_harness_logged(dummy_run):
    """MLVU per task type and Video-MME per duration are only logged by the harness (one
    decimal); the report rebuilds them from the samples file."""
    records = _by_task(collect.collect([str(dummy_run["out"])]))
    log = dummy_run["log"]
    mlvu = records[dummy_run["tasks"][0]]
    logged = _logged_percent(log, r"mlvu_aggregate_results_dev:\d+ - Evaluation on Task Categories: (\w+): ([\d.]+)%")
    assert len(logged) == 7
    for abbrev, task_type in MLVU_DEV_TYPES:
        assert round(mlvu.scores[abbrev], 1) == logged[task_type]
    vmme = records[dummy_run["tasks"][1]]
    logged = _logged_percent(log, r"Evaluation on video Type: (\w+):\s+([\d.]+)%")
    for column, duration in VIDEOMME_DURATIONS:
        assert round(vmme.scores[column], 1) == logged[duration]
    # LongVideoBench logs a dict per task; dummy answers alike for both variants, so they agree.
    dicts = [ast.literal_eval(m.group(1)) for m in re.finditer(r"longvideobench_aggregate_results:\d+ - (\{.*\})", log)]
    assert len(dicts) == 2 and dicts[0] == dicts[1]
    for task in dummy_run["tasks"][2:]:
        lvb = records[task]
        for column, group in LVB_GROUPS:
            assert lvb.scores[column] == pytest.approx(100.0 * dicts[0][group]["acc"])


def test_subscores_match_the_docs(dummy_run):
    """dummy answers "A": a group's accuracy is its share of docs whose answer is A."""
    records = _by_task(collect.collect([str(dummy_run["out"])]))
    docs = dummy_run["local"]["mlvu_dev"].docs
    for abbrev, task_type in MLVU_DEV_TYPES:
        group = [d for d in docs if d["task_type"] == task_type]
        assert records[dummy_run["tasks"][0]].scores[abbrev] == pytest.approx(100.0 * sum(d["answer"] == "A" for d in group) / len(group))
    docs = dummy_run["local"]["longvideobench_val_v"].docs
    for column, duration_group in LVB_GROUPS:
        group = [d for d in docs if d["duration_group"] == duration_group]
        assert records[dummy_run["tasks"][2]].scores[column] == pytest.approx(100.0 * sum(d["correct_choice"] == 0 for d in group) / len(group))


def _copy_run(src: Path, dst: Path, edit) -> Path:
    """A copy of a real output folder whose results JSON is changed by `edit(dict)`."""
    shutil.copytree(src, dst)
    path = next(dst.rglob("*_results.json"))
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


def test_newest_run_of_a_setting_wins(dummy_run, tmp_path):
    task = dummy_run["tasks"][1]
    old = dummy_run["results"]["results"][task]["videomme_perception_score,none"]

    def newer(data):
        data["date"] = "2999" + data["date"][4:]
        data["results"][task]["videomme_perception_score,none"] = old + 11.0

    _copy_run(dummy_run["out"], tmp_path / "rerun", newer)
    kept, superseded = collect.newest_per_setting(collect.collect([str(dummy_run["out"]), str(tmp_path / "rerun")]))
    assert len(superseded) == len(dummy_run["tasks"])  # every task was run twice
    assert _by_task(kept)[task].scores["Overall"] == pytest.approx(old + 11.0)
    assert all("rerun" in r.path for r in kept)


def test_settings_and_frames_come_from_the_recorded_config(dummy_run, tmp_path):
    """Another model's results: frames from model_args when the task has no lvu metadata."""
    task = dummy_run["tasks"][1]

    def as_onevision(data):
        data["config"]["model"] = "llava_onevision"
        data["config"]["model_args"] = "pretrained=lmms-lab/llava-onevision-qwen2-7b-ov,conv_template=qwen_1_5,max_frames_num=48,device_map=auto"
        for cfg in data["configs"].values():
            cfg["metadata"] = {"version": 0.0}

    _copy_run(dummy_run["out"], tmp_path / "folder_name_says_f999", as_onevision)
    rec = _by_task(collect.collect([str(tmp_path)]))[task]
    assert rec.model == "llava_onevision (lmms-lab/llava-onevision-qwen2-7b-ov)"
    assert rec.settings == "conv_template=qwen_1_5"  # frames and placement args are not settings
    assert rec.frames.count == 48 and rec.frames.label == "48"


def test_unknown_task_is_skipped_with_a_log_line(dummy_run, tmp_path, caplog):
    task = dummy_run["tasks"][1]

    def rename(data):
        data["results"]["videomme_no_visual"] = data["results"].pop(task)

    _copy_run(dummy_run["out"], tmp_path / "run", rename)
    with caplog.at_level(logging.INFO, logger="lvu_ext.report"):
        tasks = {r.task for r in collect.collect([str(tmp_path)])}
    assert "videomme_no_visual" not in tasks and task not in tasks and len(tasks) == len(dummy_run["tasks"]) - 1
    assert any("videomme_no_visual" in m and "skipped" in m for m in caplog.messages)


def test_folder_without_results_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main([str(tmp_path / "empty"), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert "no lmms-eval results" in err and str(tmp_path / "empty") in err
    assert not (tmp_path / "rep").exists()


def test_reference_rows_and_sources():
    data = json.loads((Path(references.__file__).parent.parent / "data" / references.DATA_FILE).read_text())
    refs = references.load_references()
    assert len(refs) == len(data["rows"])
    for row, ref in zip(data["rows"], refs):
        # the paper's tables, or another document named with the commit it was read at
        assert re.fullmatch(r"arXiv:2409\.20018v1 Table [1-5].*", row["source"]) or re.search(r"\bcommit [0-9a-f]{7,40}\b", row["source"]), row
        assert set(row["scores"]) <= set(BENCHMARKS[row["benchmark"]].columns)
        assert ref.scores == row["scores"]
    # The rows the issue asks for are there, on the benchmarks the paper reports them for.
    have = {(r.model, r.frames.label, r.benchmark.key) for r in refs}
    assert ("GPT-4o", "0.5 fps", "mlvu_dev") in have
    assert {("LLaVA-OneVision-7B", "32", b) for b in ("mlvu_dev", "videomme", "longvideobench_val_v")} <= have
    assert {("LongVA-7B", "128", "videomme"), ("LongVA-7B", "256", "mlvu_dev"), ("LongVA-7B", "256", "longvideobench_val_v")} <= have
    # Video-MME-long rows from the paper are its Video-MME rows' Long column, the same questions
    by_key = {(r.model, r.settings, r.frames.label, r.benchmark.key): r for r in refs}
    long_rows = [r for r in refs if r.benchmark.key == "videomme_long" and r.source.startswith("arXiv:2409.20018v1")]
    assert len(long_rows) >= 7
    for r in long_rows:
        assert r.scores == {"Overall": by_key[(r.model, r.settings, r.frames.label, "videomme")].scores["Long"]}
    assert ("GPT-4o", "384", "videomme_long") in have


# METHOD.md section 4 (the project's spec) states these; the data file must agree with it.
METHOD_MD_FIGURES = [
    ("LLaVA-OneVision-7B", "baseline", "32", "videomme", "Overall", 58.2),
    ("LLaVA-OneVision-7B", "baseline", "256", "videomme", "Overall", 56.2),
    ("LLaVA-OneVision-7B", "YaRN, language window", "256", "videomme", "Overall", 58.5),
    ("LLaVA-OneVision-7B + VCWE (paper)", "vcwe, w/o progressive pooling", "256", "videomme", "Overall", 61.0),
    ("LLaVA-OneVision-7B + VCWE (paper)", "paper default: vcwe + pooling (2,8),K=4", "256", "videomme", "Overall", 59.1),
    ("LLaVA-OneVision-7B + VCWE (paper)", "vcwe, pooling (2,8),K=4", "256", "videomme", "Overall", 61.3),
    ("LLaVA-OneVision-7B + VCWE (paper)", "paper default: vcwe + pooling (2,8),K=4", "512", "videomme", "Overall", 60.4),
    ("GPT-4o", "proprietary", "0.5 fps", "mlvu_dev", "M-Avg", 64.6),
    ("LLaVA-OneVision-7B", "baseline", "32", "mlvu_dev", "M-Avg", 64.2),
    ("LLaVA-OneVision-7B + VCWE (paper)", "paper default: vcwe + pooling (2,8),K=4", "256", "mlvu_dev", "M-Avg", 68.6),
    ("LLaVA-OneVision-7B + VCWE (paper)", "paper default: vcwe + pooling (2,8),K=4", "512", "mlvu_dev", "M-Avg", 69.1),
    ("LLaVA-OneVision-7B", "baseline", "32", "longvideobench_val_v", "Overall", 56.0),
    ("LLaVA-OneVision-7B + VCWE (paper)", "paper default: vcwe + pooling (2,8),K=4", "256", "longvideobench_val_v", "Overall", 57.5),
    ("LLaVA-OneVision-7B + VCWE (paper)", "paper default: vcwe + pooling (2,8),K=4", "512", "longvideobench_val_v", "Overall", 58.0),
    ("LLaVA-OneVision-7B + VCWE (paper)", "paper default: vcwe + pooling (2,8),K=4", "1 fps (<=512)", "longvideobench_val_v", "Overall", 59.4),
]
METHOD_MD_MEMORY = {
    "vcwe, pooling (2,2),K=0": 73,
    "vcwe, pooling (2,8),K=4": 40,
    "vcwe, pooling (2,4),K=4": 45,
    "vcwe, pooling (4,4),K=0": 37,
    "vcwe, pooling (8,8),K=0": 29,
}


def test_reference_file_agrees_with_method_md():
    refs = {(r.model, r.settings, r.frames.label, r.benchmark.key): r for r in references.load_references()}
    for model, settings, frames, bench, column, value in METHOD_MD_FIGURES:
        assert refs[(model, settings, frames, bench)].scores[column] == value
    memory = {r.settings: r.peak_mem_gb for r in refs.values() if r.peak_mem_gb is not None}
    assert {k: memory[k] for k in METHOD_MD_MEMORY} == METHOD_MD_MEMORY  # METHOD.md names 5 of Table 5's 9 rows
    assert len(memory) == 9


def test_bench_json_table_and_memory_plot(dummy_run, tmp_path):
    """The assumed `--bench` format: rows under "rows" (lvu-ext bench's bench.json has them,
    plus machine/settings beside them)."""
    bench = {
        "machine": {"device_name": "Test GPU 80GB"},
        "settings": {"device": "cuda:0"},
        "rows": [
            {"case": "stock", "frames": 32, "peak_mem_gb": 3.5, "prefill_s": 0.8, "visual_tokens": 6272, "status": "ok"},
            {"case": "stock", "frames": 64, "peak_mem_gb": None, "prefill_s": None, "visual_tokens": 12544, "status": "OOM"},
            {"case": "stock", "frames": 128, "peak_mem_gb": None, "prefill_s": None, "visual_tokens": None, "status": "skipped"},
            {"case": "lvu_ext", "frames": 32, "peak_mem_gb": 2.0, "prefill_s": 0.4, "visual_tokens": 1952, "status": "ok"},
            {"case": "lvu_ext", "frames": 64, "peak_mem_gb": 2.5, "prefill_s": 0.7, "visual_tokens": 3904, "status": "ok"},
        ],
    }
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    out = tmp_path / "rep"
    assert cli.main([str(dummy_run["out"]), "--out", str(out), "--bench", str(tmp_path / "bench.json"), "-q"]) == 0
    import matplotlib.image as mpimg

    png = out / "memory_vs_frames.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = mpimg.imread(png).shape[:2]
    assert height >= 300 and width >= 600  # two panels: memory and prefill
    md = (out / "report.md").read_text()
    machine = "Test GPU 80GB, cuda:0"
    for r in bench["rows"]:
        mem = "" if r["peak_mem_gb"] is None else f"{r['peak_mem_gb']:.2f}"
        pre = "" if r["prefill_s"] is None else f"{r['prefill_s']:.2f}"
        tokens = "" if r["visual_tokens"] is None else str(r["visual_tokens"])
        assert f"| {r['case']} | {r['frames']} | {tokens} | {mem} | {pre} | {r['status']} | {machine} |" in md
    assert "](memory_vs_frames.png)" in md
    with open(out / "report.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["Model"] for r in rows if r["Reference"] == "no"] == ["dummy"] * 3  # f32, f64, 1fps tasks


def test_bad_bench_json_is_a_clear_error(dummy_run, tmp_path, capsys):
    (tmp_path / "bench.json").write_text(json.dumps({"cases": []}))
    assert cli.main([str(dummy_run["out"]), "--out", str(tmp_path / "rep"), "--bench", str(tmp_path / "bench.json")]) == 2
    assert "'rows'" in capsys.readouterr().err


# ---- harness versions, revisions and the Δ columns ------------------------------------------
COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def _lvu_run(dummy_run, dst: Path, model_args: str, shift: float, harness: str | None = "0.7.3", manifest_args: str | None = None) -> dict:
    """The dummy run's results relabelled as an lvu_ext run with `model_args`, every harness
    metric moved by `shift`, and (unless harness is None) a run manifest beside it."""
    def edit(data):
        data["config"]["model"] = "lvu_ext"
        data["config"]["model_args"] = model_args
        for values in data["results"].values():
            for key, value in values.items():
                if key.endswith(",none") and "stderr" not in key and isinstance(value, (int, float)):
                    values[key] = value + shift / (100.0 if key.startswith("lvb_acc") else 1.0)

    path = _copy_run(dummy_run["out"], dst, edit)
    if harness is not None:
        args = dict(part.split("=", 1) for part in model_args.split(","))
        manifest = {"versions": {"lmms-eval": harness}, "checkpoint": {"id": args["pretrained"], "revision": COMMIT},
                    "model_args": {"rope_ext": "vcwe", "pooling": "progressive", **args},
                    "model_args_string": model_args if manifest_args is None else manifest_args}
        (dst / "lvu_ext_run.json").write_text(json.dumps(manifest))
    return json.loads(path.read_text())


def _report_csv(paths, out: Path, *extra) -> list[dict]:
    assert cli.main([*map(str, paths), "--out", str(out), "--no-references", "-q", *extra]) == 0
    with open(out / "report.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_delta_is_taken_within_one_harness_version(dummy_run, tmp_path):
    mlvu_task = dummy_run["tasks"][0]  # MLVU dev at 32 frames
    base = _lvu_run(dummy_run, tmp_path / "base", "pretrained=org/m,rope_ext=none,pooling=native", 0.0)
    vcwe = _lvu_run(dummy_run, tmp_path / "vcwe", "pretrained=org/m,rope_ext=vcwe,pooling=native", 5.0)
    _lvu_run(dummy_run, tmp_path / "old", "pretrained=org/m,rope_ext=vcwe,pooling=native", 9.0, harness="0.6.1")
    rows = _report_csv([tmp_path / "base", tmp_path / "vcwe", tmp_path / "old"], tmp_path / "rep")

    def row(settings, harness):
        found = [r for r in rows if (r["Settings"], r["Frames"], r["Harness"]) == (settings, "32", harness)]
        assert len(found) == 1, rows
        return found[0]

    metric = "mlvu_percetion_score,none"
    new = row("rope_ext=vcwe,pooling=native", "0.7.3")
    assert new["Revision"] == COMMIT and new["Baseline"] == "rope_ext=none,pooling=native @ 32"
    assert float(new["Δ MLVU M-Avg"]) == pytest.approx(vcwe["results"][mlvu_task][metric] - base["results"][mlvu_task][metric])
    assert float(row("rope_ext=none,pooling=native", "0.7.3")["Δ MLVU M-Avg"]) == 0.0
    old = row("rope_ext=vcwe,pooling=native", "0.6.1")  # the same settings under another harness: its own row, no Δ
    assert old["Δ MLVU M-Avg"] == "" and "no rope_ext=none,pooling=native@32 run" in old["Notes"]
    assert "This table mixes harness versions: 0.6.1 (3 rows), 0.7.3 (6 rows)" in (tmp_path / "rep" / "report.md").read_text()

    # --baseline picks another row
    rows = _report_csv([tmp_path / "base", tmp_path / "vcwe"], tmp_path / "rep2", "--baseline", "rope_ext=vcwe,pooling=native@32")
    assert float(row("rope_ext=none,pooling=native", "0.7.3")["Δ MLVU M-Avg"]) == pytest.approx(-5.0, abs=1e-3)
    assert row("rope_ext=vcwe,pooling=native", "0.7.3")["Baseline"] == "self"


def test_manifest_of_another_run_is_not_used(dummy_run, tmp_path):
    results = _lvu_run(dummy_run, tmp_path / "run", "pretrained=org/m,rope_ext=none,pooling=native", 0.0,
                       manifest_args="pretrained=org/m,rope_ext=vcwe")
    rows = _report_csv([tmp_path / "run"], tmp_path / "rep")
    version = results["lmms_eval_version"]
    for row in rows:
        assert row["Harness"] == ("unknown" if version.startswith("unknown@unknown") else f"git:{version}")
        assert row["Revision"] == "unknown" and "belongs to another run" in row["Notes"]


def test_mlvu_test_rows_are_flagged(dummy_run, tmp_path):
    task = dummy_run["tasks"][0]

    def as_mlvu_test(data):
        renamed = task.replace("mlvu_dev", "mlvu_test")
        data["results"] = {renamed: data["results"][task]}
        data["configs"] = {renamed: data["configs"][task]}

    _copy_run(dummy_run["out"], tmp_path / "run", as_mlvu_test)
    rows = _report_csv([tmp_path / "run"], tmp_path / "rep")
    assert len(rows) == 1 and rows[0]["MLVU-test M-Avg"] and "E or F always counts as wrong" in rows[0]["Notes"]
    assert "**MLVU-test rows.**" in (tmp_path / "rep" / "report.md").read_text()


@pytest.mark.parametrize("spec", ["rope_ext=none", "rope_ext@32", "rope_ext=none@"])
def test_bad_baseline_is_a_clear_error(tmp_path, capsys, spec):
    assert cli.main([str(tmp_path), "--out", str(tmp_path / "rep"), "--baseline", spec]) == 2
    assert "--baseline" in capsys.readouterr().err


def test_bad_results_and_samples_files_are_named_not_fatal(dummy_run, tmp_path):
    """Case 7 of issue 19: results files that are valid JSON but no results object, and a
    samples file cut short, are skipped or leave sub-scores blank, naming file and line."""
    good = tmp_path / "good"
    shutil.copytree(dummy_run["out"], good)
    samples_file = next(good.rglob("*_samples_*videomme*.jsonl"))
    lines = samples_file.read_text().splitlines()
    samples_file.write_text("\n".join(lines[:-1] + [lines[-1][: len(lines[-1]) // 2]]) + "\n")  # the last line cut
    bad = tmp_path / "bad"
    for name, body in (("null", "null"), ("list", "[1, 2]"), ("task_null", '{"results": {"videomme": null}}')):
        (bad / name).mkdir(parents=True)
        (bad / name / f"20260101_000000_{name}_results.json").write_text(body)
    out = tmp_path / "report"
    assert cli.main([str(good), str(bad), "--out", str(out), "-q"]) == 0
    md = (out / "report.md").read_text()
    skipped = md.split("## Skipped files", 1)[1]
    for name in ("null", "list", "task_null"):
        assert f"20260101_000000_{name}_results.json" in skipped
    assert f"{samples_file} line {len(lines)} is not JSON" in md  # a note naming the file and line
    videomme = [r for r in csv.DictReader((out / "report.csv").open()) if r.get("VideoMME Overall") and r["Model"] == "dummy"]
    assert videomme and not any(r.get("VideoMME Short") for r in videomme)  # headline kept, sub-scores blank
