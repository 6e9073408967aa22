"""Published results shipped with the package (data/reference_results.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from lmms_eval_plugin.report.benchmarks import BENCHMARKS, Benchmark
from lmms_eval_plugin.report.runinfo import Frames

DATA_FILE = "reference_results.json"


@dataclass
class Reference:
    model: str
    settings: str
    frames: Frames
    benchmark: Benchmark
    scores: dict[str, float]
    source: str
    peak_mem_gb: float | None = None
    plot: bool = True  # False: table and memory plot only
    harness: str = "unknown"  # the lmms-eval version the source says it scored with
    revision: str = ""  # a published row names no checkpoint commit

    @property
    def row_key(self):
        return (self.model, self.settings, self.frames, self.harness, self.revision)


def _frames(value) -> Frames:
    # A count is plotted on the frames axis; "0.5 fps" has no count and is drawn as a level.
    if isinstance(value, int):
        return Frames(value)
    return Frames(None, text=str(value))


def _read(path: str | None) -> dict:
    if path is None:
        return json.loads(resources.files("lmms_eval_plugin").joinpath("data", DATA_FILE).read_text(encoding="utf-8"))
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def citation(path: str | None = None) -> str:
    return _read(path).get("paper", "")


_ROW_KEYS = ("model", "settings", "frames", "benchmark", "scores", "source")


def check_layout(data, where: str) -> None:
    """ValueError naming the first thing of the file that is not a reference results layout."""
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        got = type(data).__name__ if not isinstance(data, dict) else "an object without a \"rows\" list"
        raise ValueError(f"{where}: expected a JSON object with a \"rows\" list (see data/{DATA_FILE}), got {got}")
    for i, row in enumerate(data["rows"]):
        missing = [k for k in _ROW_KEYS if not isinstance(row, dict) or k not in row]
        if missing:
            raise ValueError(f"{where}: rows[{i}] lacks {', '.join(missing)}")
        if row["benchmark"] not in BENCHMARKS:
            raise ValueError(f"{where}: rows[{i}] names benchmark {row['benchmark']!r}; known: {', '.join(BENCHMARKS)}")
        if not isinstance(row["scores"], dict) or not all(isinstance(v, (int, float)) for v in row["scores"].values()):
            raise ValueError(f"{where}: rows[{i}] scores must map columns to numbers")


def load_references(path: str | None = None) -> list[Reference]:
    try:
        data = _read(path)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    check_layout(data, path or DATA_FILE)
    refs = []
    for row in data["rows"]:
        bench = BENCHMARKS[row["benchmark"]]
        unknown = set(row["scores"]) - set(bench.columns)
        if unknown:
            raise ValueError(f"{DATA_FILE}: {row['model']} has columns {sorted(unknown)} not in {bench.key}")
        refs.append(
            Reference(
                model=row["model"],
                settings=row["settings"],
                frames=_frames(row["frames"]),
                benchmark=bench,
                scores={k: float(v) for k, v in row["scores"].items()},
                source=row["source"],
                peak_mem_gb=row.get("peak_mem_gb"),
                plot=bool(row.get("plot", True)),
                harness=str(row.get("harness") or data.get("harness") or "unknown"),
            )
        )
    return refs
