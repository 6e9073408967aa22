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


def load_references(path: str | None = None) -> list[Reference]:
    data = _read(path)
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
