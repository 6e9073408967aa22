"""End to end: lmms-eval runs lvu_ext (the baseline settings and the defaults, each at two
frame counts, on a checkpoint loaded by hub id from a hub-cache snapshot) and the dummy model
on the local MLVU / Video-MME / LongVideoBench copies, then `lvu-ext report` over the output
folders. Table cells are checked against the results JSONs (in percent), the Δ cells against
differences of the harness's own numbers, versions against importlib.metadata and the
snapshot's commit, and reference rows against the packaged file; plots must be readable PNGs."""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark_fixtures import build_local_benchmark, read_outputs, run_lmms_eval
from lmms_eval_plugin.report.benchmarks import BENCHMARKS, benchmark_for_task, column_header

BENCHES = ("mlvu_dev", "videomme", "longvideobench_val_v")
# folder -> model args beyond `pretrained` (the baseline of the Δ columns; lvu_ext's defaults)
SETTINGS = {"out_native": "rope_ext=none,pooling=native", "out_defaults": ""}
LABELS = {"out_native": "rope_ext=none,pooling=native", "out_defaults": "default"}  # the Settings column
HUB_ID = "lvu-test/tiny-onevision"
COMMIT = "5d0c8a7e9f1b2c3d4e5f60718293a4b5c6d7e8f9"
MODEL = f"lvu_ext ({HUB_ID})"


def _hub_snapshot(hf_home: Path) -> None:
    """The tiny checkpoint where a hub download leaves it: $HF_HOME/hub/models--org--name/{refs/main, snapshots/<commit>}."""
    from lmms_eval_plugin.checkpoints.tiny_models import build_tiny_checkpoint

    repo = hf_home / "hub" / ("models--" + HUB_ID.replace("/", "--"))
    build_tiny_checkpoint("llava_onevision", repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)


def _run(local, out: Path, model: str, model_args: str | None, labels):
    lb = local["mlvu_dev"]
    tasks = [local[b].task_for(label) for b in BENCHES for label in labels]
    args = ["--model", model, "--tasks", ",".join(tasks), "--include_path", lb.include_path_arg, "--output_path", str(out), "--log_samples"]
    if model_args:
        args[2:2] = ["--model_args", model_args]
    proc = run_lmms_eval(args, env=lb.env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Error during evaluation" not in log, log[-3000:]
    return read_outputs(out)[0]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report_e2e")
    local = {b: build_local_benchmark(root, b, docs_per_category=1) for b in BENCHES}  # keeps the 3 CLI runs short
    _hub_snapshot(Path(local["mlvu_dev"].env["HF_HOME"]))
    runs = {}  # folder -> (expected model, settings, results JSON)
    for folder, settings in SETTINGS.items():
        model_args = ",".join(filter(None, (f"pretrained={HUB_ID}", settings)))
        runs[folder] = (MODEL, LABELS[folder], _run(local, root / folder, "lvu_ext", model_args, ("f32", "f64")))
    runs["out_dummy"] = ("dummy", "default", _run(local, root / "out_dummy", "dummy", None, ("f32",)))

    out = root / "report"
    exe = Path(sys.executable).with_name("lvu-ext")
    cmd = [str(exe) if exe.exists() else "lvu-ext", "report", *(str(root / f) for f in runs), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **local["mlvu_dev"].env}, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "report.csv", newline="", encoding="utf-8") as fh:
        csv_rows = list(csv.DictReader(fh))
    return {"root": root, "local": local, "runs": runs, "out": out, "csv": csv_rows, "md": (out / "report.md").read_text()}


def _row(rows, model, settings, frames):
    found = [r for r in rows if (r["Model"], r["Settings"], r["Frames"]) == (model, settings, frames)]
    assert len(found) == 1, f"{(model, settings, frames)}: {len(found)} rows in {[(r['Model'], r['Settings'], r['Frames']) for r in rows]}"
    return found[0]


def _md_rows(md: str, section: str) -> list[dict]:
    """The markdown table under `## section` as dicts (model cell keeps its [ref] tag)."""
    lines = md.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0].strip().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split(" | ")]
    return [dict(zip(header, (c.strip() for c in line.strip().strip("|").split(" | ")))) for line in lines[2:]]


def test_run_rows_hold_the_harness_numbers_in_percent(report):
    md_rows = _md_rows(report["md"], "All metrics")
    checked = 0
    for model, settings, results in report["runs"].values():
        for task, values in results["results"].items():
            bench = benchmark_for_task(task)
            frames = str(results["configs"][task]["metadata"]["lvu_num_frames"])
            metric = {"mlvu_dev": "mlvu_percetion_score", "videomme": "videomme_perception_score", "longvideobench_val_v": "lvb_acc"}[bench.key]
            percent = values[f"{metric},none"] * (100.0 if metric == "lvb_acc" else 1.0)
            header = column_header(bench, bench.main)
            assert float(_row(report["csv"], model, settings, frames)[header]) == pytest.approx(percent, abs=1e-4)
            md = _row(md_rows, model, settings, frames)
            assert md[header] == f"{percent:.1f}"
            checked += 1
    assert checked == 2 * 2 * 3 + 3  # lvu_ext: 2 settings x 2 frame counts x 3 benchmarks; dummy: 3


def test_subscores_add_up_to_the_harness_headline(report):
    """Sub-scores are recounted from the samples files; weighted by the fixture's docs per
    group they must give back the harness's own headline (MLVU: plain mean of the types)."""
    docs = {b: report["local"][b].docs for b in BENCHES}
    vmme_n = {d: sum(doc["duration"] == d for doc in docs["videomme"]) for d in ("short", "medium", "long")}
    lvb_n = {g: sum(doc["duration_group"] == g for doc in docs["longvideobench_val_v"]) for g in (15, 60, 600, 3600)}
    for row in (r for r in report["csv"] if r["Reference"] == "no"):
        cell = {h: float(v) for h, v in row.items() if v and h.split(" ")[0] in ("MLVU", "VideoMME", "LVB")}
        mlvu = [cell[f"MLVU {c}"] for c in BENCHMARKS["mlvu_dev"].columns[1:]]
        assert cell["MLVU M-Avg"] == pytest.approx(sum(mlvu) / 7, abs=1e-3)
        vmme = sum(cell[f"VideoMME {d.capitalize()}"] * n for d, n in vmme_n.items()) / sum(vmme_n.values())
        assert cell["VideoMME Overall"] == pytest.approx(vmme, abs=1e-3)
        lvb_cols = dict(zip((15, 60, 600, 3600), BENCHMARKS["longvideobench_val_v"].columns[1:]))
        lvb = sum(cell[f"LVB {lvb_cols[g]}"] * n for g, n in lvb_n.items()) / sum(lvb_n.values())
        assert cell["LVB Overall"] == pytest.approx(lvb, abs=1e-3)


def test_dummy_run_is_its_own_row(report):
    runs = [(r["Model"], r["Settings"], r["Frames"]) for r in report["csv"] if r["Reference"] == "no"]
    assert runs.count(("dummy", "default", "32")) == 1
    assert sorted(set(runs) - {("dummy", "default", "32")}) == sorted((MODEL, s, f) for s in LABELS.values() for f in ("32", "64"))


def test_reference_rows_match_the_data_file(report):
    import lmms_eval_plugin

    data = json.loads((Path(lmms_eval_plugin.__file__).parent / "data" / "reference_results.json").read_text())
    refs = [r for r in report["csv"] if r["Reference"] == "yes"]
    for ref in data["rows"]:
        frames = str(ref["frames"])
        row = _row(refs, ref["model"], ref["settings"], frames)
        table_no = re.search(r"Table (\d)", ref["source"])
        if table_no is None:  # another document than the paper: cited whole
            assert ref["source"] in row["Source"], (ref, row["Source"])
        else:
            assert table_no.group(1) in re.findall(r"\b(\d)\b", row["Source"].split("Table", 1)[1]), (ref, row["Source"])
        for column, value in ref["scores"].items():
            assert float(row[column_header(BENCHMARKS[ref["benchmark"]], column)]) == pytest.approx(value)
    assert "GPT-4o [ref]" in report["md"] and "LongVA-7B [ref]" in report["md"]


def test_plots_are_readable_pngs(report):
    import matplotlib.image as mpimg

    names = ["accuracy_vs_frames.png"] + [f"accuracy_{b}.png" for b in BENCHES]
    for name in names:
        path = report["out"] / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        height, width = mpimg.imread(path).shape[:2]
        assert height >= 300 and width >= 400, (name, height, width)
        assert f"({name})" in report["md"]


def test_run_rows_show_harness_version_and_revision(report):
    lmms_eval_version = importlib.metadata.version("lmms-eval")
    runs = [r for r in report["csv"] if r["Reference"] == "no"]
    for row in runs:
        if row["Model"] == MODEL:  # from the run manifest
            assert (row["Harness"], row["Revision"]) == (lmms_eval_version, COMMIT), row
        else:  # dummy: no manifest; the results JSON's own lmms_eval_version (git of the folder it ran in)
            version = report["runs"]["out_dummy"][2]["lmms_eval_version"]
            assert row["Harness"] == ("unknown" if version.startswith("unknown@unknown") else f"git:{version}"), row
    refs = [r for r in report["csv"] if r["Reference"] == "yes"]
    assert refs and all(r["Harness"] == "unknown" for r in refs)  # the reference file names no version
    headline = _md_rows(report["md"], "Headline")
    assert {(r["Harness"], r["Revision"]) for r in headline if r["Model"] == MODEL} == {(lmms_eval_version, COMMIT[:12])}
    assert "This table mixes harness versions" in report["md"]


def test_delta_cells_are_differences_of_the_harness_numbers(report):
    """Δ = this row's harness headline minus the baseline run's (rope_ext=none,pooling=native at 32
    frames, same checkpoint, same lmms-eval), computed here from the results JSONs."""
    def harness_percent(folder, bench_key, label):
        results = report["runs"][folder][2]["results"]
        task = next(t for t in results if benchmark_for_task(t).key == bench_key and t.endswith(f"_lvu_{label}"))
        metric = BENCHMARKS[bench_key].metric
        return results[task][f"{metric},none"] * BENCHMARKS[bench_key].scale

    md = _md_rows(report["md"], "Headline")
    checked = 0
    for folder in SETTINGS:
        for frames in ("32", "64"):
            csv_row = _row(report["csv"], MODEL, LABELS[folder], frames)
            md_row = _row(md, MODEL, LABELS[folder], frames)
            is_base = folder == "out_native" and frames == "32"
            assert csv_row["Baseline"] == ("self" if is_base else "rope_ext=none,pooling=native @ 32")
            for bench_key in BENCHES:
                header = f"Δ {column_header(BENCHMARKS[bench_key], BENCHMARKS[bench_key].main)}"
                expected = harness_percent(folder, bench_key, f"f{frames}") - harness_percent("out_native", bench_key, "f32")
                assert float(csv_row[header]) == pytest.approx(expected, abs=1e-4)
                assert md_row[header] == ("base" if is_base else f"{expected:+.1f}")
                checked += 1
    assert checked == 2 * 2 * 3
    dummy = _row(report["csv"], "dummy", "default", "32")
    assert not any(dummy[h] for h in dummy if h.startswith("Δ")) and dummy["Baseline"] == ""


def test_run_manifest_of_each_lvu_ext_run(report):
    for folder in SETTINGS:
        manifest = json.loads((report["root"] / folder / "lvu_ext_run.json").read_text())
        assert manifest["versions"] == {p: importlib.metadata.version(p) for p in ("lmms-eval", "transformers", "torch", "accelerate", "lvu_ext")}
        assert (manifest["checkpoint"]["id"], manifest["checkpoint"]["revision"]) == (HUB_ID, COMMIT)
        assert manifest["model_args_string"] == report["runs"][folder][2]["config"]["model_args"]
        assert manifest["processes"] == 1
        results = report["runs"][folder][2]
        assert set(manifest["tasks"]) == set(results["results"])
        for task, entry in manifest["tasks"].items():
            frames = results["configs"][task]["metadata"]["lvu_num_frames"]
            assert entry["frame_plan"].startswith(f"{frames} ")
            assert entry["yaml_sha256"] == hashlib.sha256(Path(entry["yaml"]).read_bytes()).hexdigest()
            assert Path(entry["yaml"]).name == f"{task}.yaml"
