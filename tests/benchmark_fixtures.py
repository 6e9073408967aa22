"""Small offline stand-ins for MLVU, Video-MME and LongVideoBench, for lmms-eval CLI tests.

    from benchmark_fixtures import build_local_benchmark
    lb = build_local_benchmark(tmp_path, "mlvu_dev")
    subprocess.run(["lmms-eval", "--model", "dummy", "--tasks", lb.task_for("f32"),
                    "--include_path", lb.include_path_arg, "--output_path", ...],
                   env={**os.environ, **lb.env})

What gets built under `root` (shared by every benchmark built with the same root, so one CLI call
can run tasks of several benchmarks):
  hf_home/<cache_dir>/...   short generated videos, laid out where the built-in utils look for them
                            ($HF_HOME/<dataset_kwargs.cache_dir>, computed when those modules load)
  data/<benchmark>.jsonl    a few docs in the benchmark's document schema
  lmms_tasks/<benchmark>/   test-only YAMLs: each `include`s the real variant (tasks/...) and
                            overrides only `dataset_path: json` and `dataset_kwargs.data_files`;
                            task and group names are the real ones.
lmms-eval's video download step is skipped because `$HF_HOME/<cache_dir>` exists; the docs load
through datasets' `json` builder, so nothing touches the hub (the env sets the offline flags).

Only the fields the built-in utils read are certain; the others follow the public datasets as
far as they are known. Answers and categories are spread over the benchmark's real category
names so the harness's per-category aggregation sees several of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

BENCHMARKS = ("mlvu_dev", "mlvu_test", "videomme", "longvideobench_val_v", "longvideobench_test_v", "lvbench", "egoschema_subset",
              "videomme_long")

FPS = 8
SIZE = 64

# Category names exactly as the built-in aggregations spell them.
MLVU_DEV_TYPES = ("anomaly_reco", "count", "ego", "needle", "order", "plotQA", "topic_reasoning")
MLVU_TEST_TYPES = ("anomaly_reco", "count", "ego", "needleQA", "order", "plotQA", "sportsQA", "topic_reasoning", "tutorialQA")
VIDEOMME_VIDEOS = (  # (duration, domain, sub_category, task types of its questions)
    ("short", "Knowledge", "Humanity & History", ("Temporal Perception", "Object Recognition")),
    ("medium", "Sports Competition", "Football", ("Counting Problem", "Action Reasoning")),
    ("long", "Life Record", "Pet & Animal", ("Information Synopsis", "OCR Problems")),
)
LVB_GROUPS = (  # (duration_group, question categories, level)
    (15, ("S2E", "T2O"), "L1-Perception"),
    (60, ("E2O", "S2A"), "L1-Perception"),
    (600, ("O3O", "T3E"), "L2-Relation"),
    (3600, ("SSS", "TOS"), "L2-Relation"),
)
_FOLDERS = {"mlvu_dev": "mlvu", "mlvu_test": "mlvu", "videomme": "videomme", "longvideobench_val_v": "longvideobench", "longvideobench_test_v": "longvideobench",
            "lvbench": "lvbench", "egoschema_subset": "egoschema", "videomme_long": "videomme"}
COLORS = ("red", "green", "blue", "yellow")
RGB = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 70, 220), "yellow": (230, 210, 40)}


@dataclass
class LocalBenchmark:
    benchmark: str
    root: Path
    env: dict  # env vars to add to os.environ: HF_HOME and the offline flags
    include_path: list  # one folder; lmms-eval 0.7's --include_path takes a single path
    docs: list  # the docs written, in dataset order (doc_id = index)
    split: str  # the split the variants evaluate
    group: str  # group name running every variant of the benchmark
    labels: tuple  # frame labels of the variants: 'f32', ..., '1fps_max512'
    data_file: Path = None
    video_dir: Path = None
    doc_frames: list = field(default_factory=list)  # frames of each doc's video (index = doc_id), at FPS fps

    @property
    def include_path_arg(self) -> str:
        """The value for `--include_path`."""
        return self.include_path[0]

    def task_for(self, frames_label: str) -> str:
        if frames_label not in self.labels:
            raise KeyError(f"{self.benchmark} has no {frames_label!r} variant (has {self.labels})")
        return f"{self.benchmark}_lvu_{frames_label}"


def build_local_benchmark(root: Path, benchmark: str, docs_per_category: int = 2) -> LocalBenchmark:
    """Write videos, docs and test-only task YAMLs for `benchmark` under `root`.

    docs_per_category: questions per MLVU task type, per LongVideoBench duration group, and per
    Video-MME video (one video for each of short/medium/long).
    """
    from lmms_eval.utils import load_yaml_config

    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; one of {BENCHMARKS}")
    root = Path(root).resolve()
    hf_home = root / "hf_home"
    real_dir = _real_tasks_dir()
    folder = _FOLDERS[benchmark]
    group_yaml = real_dir / folder / f"{benchmark}_lvu.yaml"
    group_cfg = load_yaml_config(str(group_yaml), mode="simple")
    tasks = list(group_cfg["task"])
    real_cfg = load_yaml_config(str(real_dir / folder / f"{tasks[0]}.yaml"), mode="simple")
    split = real_cfg["test_split"]
    dataset_kwargs = dict(real_cfg["dataset_kwargs"])

    video_dir = hf_home / dataset_kwargs["cache_dir"]
    make = {"mlvu_dev": _mlvu_docs, "mlvu_test": _mlvu_docs, "videomme": _videomme_docs, "videomme_long": _videomme_docs,
            "lvbench": _lvbench_docs, "egoschema_subset": _egoschema_docs}.get(benchmark, _lvb_docs)
    docs, videos = make(benchmark, docs_per_category)
    # Same layout as the built-in doc_to_visual functions resolve.
    sub = {"videomme": "data", "videomme_long": "data", "longvideobench_val_v": "videos", "longvideobench_test_v": "videos",
           "egoschema_subset": "videos"}.get(benchmark, "")
    target = video_dir / sub if sub else video_dir
    target.mkdir(parents=True, exist_ok=True)
    for i, (name, seconds) in enumerate(videos.items()):
        write_video(target / name, seconds * FPS, seed=i)
    if benchmark.startswith("longvideobench"):
        subs = video_dir / "subtitles"
        subs.mkdir(exist_ok=True)
        for doc in docs:
            (subs / doc["subtitle_path"]).write_text(json.dumps([{"start": "00:00:00.000", "end": "00:00:01.000", "line": "hello"}]))

    data_file = root / "data" / f"{benchmark}.jsonl"
    data_file.parent.mkdir(parents=True, exist_ok=True)
    data_file.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")

    include_dir = root / "lmms_tasks"
    out = include_dir / benchmark
    out.mkdir(parents=True, exist_ok=True)
    local_kwargs = {**dataset_kwargs, "data_files": {split: str(data_file)}}
    for task in tasks:
        body = {"include": str(real_dir / folder / f"{task}.yaml"), "dataset_path": "json", "dataset_kwargs": local_kwargs}
        if real_cfg.get("dataset_name"):  # a hub config name (EgoSchema's "Subset") means nothing to the json builder
            body["dataset_name"] = None
        _write_yaml(out / f"{task}.yaml", body)
    _write_yaml(out / f"{benchmark}_lvu.yaml", {"include": str(group_yaml)})

    prefix = f"{benchmark}_lvu_"
    if benchmark == "videomme_long":  # its process_docs keeps Video-MME's long third, renumbered
        docs = [d for d in docs if d["duration"] == "long"]
    return LocalBenchmark(
        benchmark=benchmark,
        root=root,
        env=offline_env(hf_home),
        include_path=[str(include_dir)],
        docs=docs,
        split=split,
        group=group_cfg["group"],
        labels=tuple(t[len(prefix) :] for t in tasks),
        data_file=data_file,
        video_dir=target,
        doc_frames=[videos[_video_name(benchmark, d)] * FPS for d in docs],
    )


def expected_metadata(task: str) -> dict:
    """The frame-count `metadata` a variant task must carry (the contract with lvu_ext)."""
    label = task.rsplit("_lvu_", 1)[1]
    if label.endswith("fps_max512"):
        return {"version": 0.0, "lvu_fps": float(label[: -len("fps_max512")]), "lvu_max_frames": 512}
    return {"version": 0.0, "lvu_num_frames": int(label[1:])}


def offline_env(hf_home: Path) -> dict:
    return {
        "HF_HOME": str(hf_home),
        "HF_DATASETS_CACHE": str(hf_home / "datasets"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def write_video(path: Path, n_frames: int, seed: int = 0, fps: int = FPS, size: int = SIZE) -> None:
    """A square of one colour crossing a background of another, so consecutive frames differ."""
    import av

    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 80, size=3).astype(np.uint8)
    fg = np.array(RGB[COLORS[seed % len(COLORS)]], np.uint8)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for t in range(n_frames):
            img = np.empty((size, size, 3), np.uint8)
            img[:] = bg
            x = int(t * (size - 16) / max(n_frames - 1, 1))
            y = (seed * 13) % (size - 16)
            img[y : y + 16, x : x + 16] = fg
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# --- docs per benchmark: (docs, {video file name: seconds}) -----------------------------------


def _options(i: int) -> tuple[list[str], int]:
    """Four colour options, the answer rotating over A-D."""
    answer = i % 4
    return [f"The square is {c}." for c in COLORS], answer


EXTRA_OPTIONS = ("The square is black.", "The square is white.")


def _mlvu_docs(benchmark: str, k: int):
    """MLVU's text format: the bare question, then one "(A) ..." line per option (no
    "Question:" / "Options:" headers). Dev questions have four options; test questions up to
    six (A-F), and the harness's answer extraction maps only A-D, so an E/F answer cannot
    score. The public test split is reported to withhold its answers: `answer` here only
    lets the harness's process_results run on the fixture."""
    types = MLVU_DEV_TYPES if benchmark == "mlvu_dev" else MLVU_TEST_TYPES
    docs, videos = [], {}
    for task_type in types:
        for j in range(k):
            i = len(docs)
            name = f"{task_type}_{j}.mp4"
            seconds = 4 + (i % 3)  # >= 32 frames, so f32 gets all it asks for
            videos[name] = seconds
            candidates, answer = _options(i)
            if benchmark == "mlvu_test":
                candidates = candidates + list(EXTRA_OPTIONS[: i % 3])  # 4, 5 or 6 options
                answer = i % len(candidates)
            options = "\n".join(f"({chr(65 + n)}) {c}" for n, c in enumerate(candidates))
            docs.append({
                "video_name": name,
                "duration": float(seconds),
                "question": f"What colour is the moving square?\n{options}",
                "candidates": candidates,
                "answer": chr(65 + answer),
                "task_type": task_type,
                "question_id": f"{task_type}_{j}",
            })
    return docs, videos


def _videomme_docs(benchmark: str, k: int):
    docs, videos = [], {}
    for v, (duration, domain, sub_category, task_types) in enumerate(VIDEOMME_VIDEOS):
        video_id = f"{v + 1:03d}"
        video_key = f"lvu{v}"  # Video-MME's videoID is the YouTube id
        videos[f"{video_key}.mp4"] = 4 + v
        for j in range(k):
            i = len(docs)
            candidates, answer = _options(i)
            docs.append({
                "video_id": video_id,
                "duration": duration,
                "domain": domain,
                "sub_category": sub_category,
                "url": f"https://www.youtube.com/watch?v={video_key}",
                "videoID": video_key,
                "question_id": f"{video_id}-{j + 1}",
                "task_type": task_types[j % len(task_types)],
                "question": "What colour is the moving square?",
                "options": [f"{chr(65 + n)}. {c}" for n, c in enumerate(candidates)],
                "answer": chr(65 + answer),
            })
    return docs, videos


def _lvb_docs(benchmark: str, k: int):
    split = "val" if "val" in benchmark else "test"
    docs, videos = [], {}
    for g, (duration_group, categories, level) in enumerate(LVB_GROUPS):
        for j in range(k):
            i = len(docs)
            video_id = f"lvu_{split}_{g}_{j}"
            seconds = 4 + (i % 4)  # distinct lengths, so 1 fps asks for different frame counts
            videos[f"{video_id}.mp4"] = seconds
            candidates, answer = _options(i)
            n_opts = 4 + (i % 2)  # LongVideoBench has 4 or 5 options; unused ones are "N/A"
            if n_opts == 5:
                candidates = candidates + ["The square is black."]
            # The test split has no public ground truth (only the submission file counts);
            # correct_choice is kept only because the harness's process_results reads it.
            doc = {
                "video_id": video_id,
                "question": "What colour is the moving square?",
                "question_wo_referring_query": "What colour is the square?",
                "candidates": candidates,
                "correct_choice": answer,
                "position": [1, 2],
                "topic_category": "NP-News-Programs",
                "question_category": categories[j % len(categories)],
                "level": level,
                "id": f"{video_id}_0",
                "video_path": f"{video_id}.mp4",
                "subtitle_path": f"{video_id}_en.json",
                "duration_group": duration_group,
                "starting_timestamp_for_subtitles": 0.0,
                "duration": float(seconds),
                "view_count": 1000 + i,
            }
            for n in range(5):
                doc[f"option{n}"] = candidates[n] if n < len(candidates) else "N/A"
            docs.append(doc)
    return docs, videos


def _lvbench_docs(benchmark: str, k: int):
    """LVBench's layout (lmms-eval/LVBench, one row per question): the options are part of
    the question text as `(A) ...` lines, `answer` is the letter, `video_path` is relative to
    $HF_HOME/lvbench; several questions per (hour-long, here a few seconds) video."""
    docs, videos = [], {}
    for v in range(2):
        key = f"lvu{v:02d}"
        videos[f"{key}.mp4"] = 5 + v
        for j in range(k + 1):
            i = len(docs)
            candidates, answer = _options(i)
            options = "\n".join(f"({chr(65 + n)}) {c}" for n, c in enumerate(candidates))
            docs.append({
                "uid": f"{key}-{j}",
                "key": key,
                "video_path": f"{key}.mp4",
                "type": "documentary",
                "question": f"What colour is the moving square?\n{options}",
                "answer": chr(65 + answer),
                "question_type": ["entity recognition"] if j % 2 == 0 else ["key information retrieval"],
                "time_reference": "00:00-00:04",
            })
    return docs, videos


def _egoschema_docs(benchmark: str, k: int):
    """EgoSchema's Subset layout: five `option` strings, `answer` the index (as text) of the
    right one, videos as $HF_HOME/egoschema/videos/<video_idx>.mp4, one question per clip."""
    docs, videos = [], {}
    for i in range(2 * k):
        video_idx = f"00000000-lvu{i:02d}-0000-0000-000000000000"
        videos[f"{video_idx}.mp4"] = 4 + i % 3
        candidates, answer = _options(i)
        candidates = (candidates + ["The square is black.", "The square is white.", "There is no square."])[:5]
        docs.append({
            "question_idx": f"q-{video_idx}",
            "question": "Taking the whole video into account, what colour is the moving square?",
            "video_idx": video_idx,
            "option": [f"{chr(65 + n)}. {c}" for n, c in enumerate(candidates)],
            "answer": str(answer),
        })
    return docs, videos


def _video_name(benchmark: str, doc: dict) -> str:
    if benchmark.startswith("mlvu"):
        return doc["video_name"]
    if benchmark.startswith("videomme"):
        return doc["videoID"] + ".mp4"
    if benchmark == "egoschema_subset":
        return doc["video_idx"] + ".mp4"
    return doc["video_path"]


def _write_yaml(path: Path, body: dict) -> None:
    path.write_text("# test-only (tests/benchmark_fixtures.py)\n" + yaml.safe_dump(body, sort_keys=False), encoding="utf-8")


def _real_tasks_dir() -> Path:
    from lmms_eval_plugin.paths import tasks_dir

    return Path(tasks_dir())



# --- running lmms-eval and reading what it wrote ----------------------------------------------


def lmms_eval_command(*args: str) -> list:
    """`lmms-eval` of the running interpreter's environment, with args."""
    import shutil
    import sys

    exe = Path(sys.executable).with_name("lmms-eval")
    return [str(exe) if exe.exists() else (shutil.which("lmms-eval") or "lmms-eval"), *args]


def run_lmms_eval(args: list, env: dict, cwd=None, timeout: int = 600):
    """Run the lmms-eval CLI with `env` added to os.environ; returns the CompletedProcess.

    lmms-eval exits 0 even when evaluation raised, so callers must check the output files
    (read_outputs) and may check `"Error during evaluation" not in proc.stdout + proc.stderr`.
    """
    import os
    import subprocess

    return subprocess.run(lmms_eval_command(*args), env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def read_outputs(output_path) -> tuple:
    """(results JSON of the newest run under output_path, {task: [logged samples]})."""
    output_path = Path(output_path)
    results_files = sorted(output_path.rglob("*_results.json"))
    if not results_files:
        raise FileNotFoundError(f"no *_results.json under {output_path}")
    results_file = results_files[-1]
    results = json.loads(results_file.read_text(encoding="utf-8"))
    date_id = results_file.name[: -len("_results.json")]
    samples = {}
    for path in results_file.parent.glob(f"{date_id}_samples_*.jsonl"):
        task = path.name[len(f"{date_id}_samples_") : -len(".jsonl")]
        samples[task] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return results, samples


def harness_metric(task: str, samples: list) -> tuple:
    """(metric name, value) as the harness's own aggregation computes it from logged samples.

    Uses the variant's resolved config (the built-in aggregation function); the submission
    metric of test splits has no value (the built-in writes a file and returns None).
    """
    from lmms_eval.utils import load_yaml_config

    benchmark = task.rsplit("_lvu_", 1)[0]
    config = load_yaml_config(str(_real_tasks_dir() / _FOLDERS[benchmark] / f"{task}.yaml"), mode="full")
    metric = config["metric_list"][0]
    if metric["metric"] == "submission":
        return "submission", None
    aggregation = metric["aggregation"]
    if isinstance(aggregation, str):  # a registered one by name (LVBench: mean)
        from lmms_eval.api.registry import get_aggregation

        aggregation = get_aggregation(aggregation)
    values = [s[metric["metric"]] for s in samples]
    import inspect

    # some harness aggregations take the CLI args too (EgoSchema's); they do not read them
    return metric["metric"], aggregation(values, None) if len(inspect.signature(aggregation).parameters) > 1 else aggregation(values)
