"""The paper's tables as rows to run (data/reproduce_tables.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

DATA_FILE = "reproduce_tables.json"


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    benchmark: str  # report benchmark key (report/benchmarks.py)
    column: str  # the report column the paper's score is in
    paper: float
    source: str
    task: str | None = None
    model_args: str = ""
    baseline: str | None = None  # None: this row is a baseline
    paper_mem_gb: float | None = None
    runnable: bool = True
    why: str = ""  # why a row is not runnable


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    rows: tuple[Row, ...]
    citation: str
    video_fields: dict  # benchmark -> the document field naming its video

    @property
    def runnable(self) -> list[Row]:
        return [r for r in self.rows if r.runnable]

    def row(self, row_id: str) -> Row:
        return next(r for r in self.rows if r.id == row_id)

    def baseline_of(self, row: Row) -> Row:
        return row if row.baseline is None else self.row(row.baseline)


def _read() -> dict:
    return json.loads(resources.files("lmms_eval_plugin").joinpath("data", DATA_FILE).read_text(encoding="utf-8"))


def table_names() -> list[str]:
    return list(_read()["tables"])


def load_table(name: str) -> Table:
    data = _read()
    if name not in data["tables"]:
        raise KeyError(f"no table {name!r}; one of: {', '.join(data['tables'])}")
    spec = data["tables"][name]
    benchmarks = data["benchmarks"]
    rows = []
    for raw in spec["rows"]:
        raw = dict(raw)
        bench = benchmarks[raw["benchmark"]]
        rows.append(Row(column=bench["column"], **raw))
    table = Table(name, spec["title"], tuple(rows), data["paper_citation"], {k: v["video_field"] for k, v in benchmarks.items()})
    _check(table)
    return table


def _check(table: Table) -> None:
    ids = [r.id for r in table.rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{DATA_FILE}: {table.name} repeats a row id")
    for row in table.rows:
        if row.runnable and not row.task:
            raise ValueError(f"{DATA_FILE}: {table.name}/{row.id} is runnable but names no task")
        if not row.runnable and not row.why:
            raise ValueError(f"{DATA_FILE}: {table.name}/{row.id} is not runnable but says not why")
        if row.baseline is not None:
            if row.baseline not in ids:
                raise ValueError(f"{DATA_FILE}: {table.name}/{row.id}: baseline {row.baseline!r} is not a row")
            base = table.row(row.baseline)
            if base.baseline is not None or not base.runnable or base.benchmark != row.benchmark:
                raise ValueError(f"{DATA_FILE}: {table.name}/{row.id}: baseline {row.baseline!r} must be a runnable baseline row of {row.benchmark}")
