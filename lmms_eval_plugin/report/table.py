"""One row per (model, settings, frames), one column per benchmark metric, in percent."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field

from lmms_eval_plugin.report.benchmarks import BENCHMARKS, Benchmark, column_header
from lmms_eval_plugin.report.runinfo import Frames

KEY_COLUMNS = ("Model", "Settings", "Frames", "Harness", "Revision", "Source")
DELTA = "Δ"


@dataclass
class Row:
    model: str
    settings: str
    frames: Frames
    is_reference: bool
    scores: dict[tuple[str, str], float] = field(default_factory=dict)  # (benchmark key, column)
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    harness: str = "unknown"  # lmms-eval version the scores come from
    revision: str = ""  # checkpoint commit ("" for published rows)
    effective_args: dict[str, str] = field(default_factory=dict)
    deltas: dict[tuple[str, str], float] = field(default_factory=dict)  # headline minus baseline (baseline.py)
    baseline: str = ""  # "self", the baseline row's "settings @ frames", or "" (none)

    @property
    def source(self) -> str:
        return join_sources(self.sources)


def join_sources(sources: list[str]) -> str:
    """'X Table 2', 'X Table 1' -> 'X Tables 1, 2' (one paper cited once per row)."""
    by_doc: dict[str, list[str]] = {}
    for src in sources:
        doc, sep, table_no = src.partition(" Table ")
        if sep and table_no.isdigit():
            by_doc.setdefault(doc, []).append(table_no)
        else:
            by_doc.setdefault(src, [])
    parts = []
    for doc, numbers in by_doc.items():
        numbers = sorted(set(numbers), key=int)
        parts.append(doc if not numbers else f"{doc} Table{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}")
    return "; ".join(parts)


def _merge(items, is_reference: bool, source_of) -> list[Row]:
    rows: dict[tuple, Row] = {}
    for it in items:
        row = rows.get(it.row_key)
        if row is None:
            row = rows[it.row_key] = Row(
                it.model, it.settings, it.frames, is_reference, harness=it.harness, revision=it.revision,
                effective_args=dict(getattr(it, "effective_args", {})),
            )
        for column, value in it.scores.items():
            row.scores[(it.benchmark.key, column)] = value
        src = source_of(it)
        if src not in row.sources:
            row.sources.append(src)
        for note in getattr(it, "notes", []):
            note = f"{it.benchmark.title}: {note}"
            if note not in row.notes:
                row.notes.append(note)
    return list(rows.values())


def build_rows(records, references, source_of_record) -> list[Row]:
    """Runs first (sorted), then the published references in data-file order."""
    runs = _merge(records, False, source_of_record)
    runs.sort(key=lambda r: (r.model, r.revision, r.harness, r.settings, r.frames.sort_key()))
    return runs + _merge(references, True, lambda ref: ref.source)


def columns(rows: list[Row]) -> list[tuple[Benchmark, str]]:
    """Every column of every benchmark that has at least one value, in BENCHMARKS order."""
    present = {bench for row in rows for bench, _ in row.scores}
    return [(b, c) for b in BENCHMARKS.values() if b.key in present for c in b.columns]


def headline_columns(rows: list[Row]) -> list[tuple[Benchmark, str]]:
    return [(b, c) for b, c in columns(rows) if c == b.main]


def _cells(row: Row, cols, fmt, revision_chars: int = 40, delta_fmt=None) -> list[str]:
    revision = row.revision[:revision_chars] if row.revision != "unknown" else row.revision
    cells = [row.model + (" [ref]" if row.is_reference else ""), row.settings, row.frames.label, row.harness, revision, row.source]
    for bench, col in cols:
        value = row.scores.get((bench.key, col))
        cells.append("" if value is None else fmt(value))
        if delta_fmt is not None:
            delta = row.deltas.get((bench.key, col))
            cells.append(delta_fmt(row, delta))
    return cells


def _headers(cols, with_delta: bool) -> list[str]:
    out = []
    for bench, col in cols:
        out.append(column_header(bench, col))
        if with_delta:
            out.append(f"{DELTA} {column_header(bench, col)}")
    return out


def _md_delta(row: Row, delta) -> str:
    if delta is None:
        return ""
    return "base" if row.baseline == "self" else f"{delta:+.1f}"


def markdown_table(rows: list[Row], cols, with_delta: bool = False) -> str:
    """Revisions cut to 12 characters (the CSV has them whole); with_delta adds a Δ column
    after each score column ("base" on the baseline row itself)."""
    header = list(KEY_COLUMNS) + _headers(cols, with_delta)

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    score_columns = len(header) - len(KEY_COLUMNS)
    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "|".join(["---"] * len(KEY_COLUMNS) + ["---:"] * score_columns) + "|"]
    for row in rows:
        cells = _cells(row, cols, lambda v: f"{v:.1f}", revision_chars=12, delta_fmt=_md_delta if with_delta else None)
        lines.append("| " + " | ".join(esc(c) for c in cells) + " |")
    return "\n".join(lines)


def write_csv(rows: list[Row], cols, path: str) -> None:
    """Full precision (4 decimals) so the CSV can be re-checked against the results JSONs;
    a Δ column after each headline column (0 on the baseline row), and the baseline row named."""
    headline = {(b.key, c) for b, c in cols if c == b.main}
    header = list(KEY_COLUMNS) + ["Reference", "Baseline", "Notes"]
    for bench, col in cols:
        header.append(column_header(bench, col))
        if (bench.key, col) in headline:
            header.append(f"{DELTA} {column_header(bench, col)}")
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            cells = _cells(row, [], lambda v: v)
            cells[0] = row.model  # the CSV has its own Reference column instead of the [ref] tag
            cells += ["yes" if row.is_reference else "no", row.baseline, " / ".join(row.notes)]
            for bench, col in cols:
                value = row.scores.get((bench.key, col))
                cells.append("" if value is None else f"{value:.4f}")
                if (bench.key, col) in headline:
                    delta = row.deltas.get((bench.key, col))
                    cells.append("" if delta is None else f"{delta:.4f}")
            writer.writerow(cells)


def relative_source(path: str, roots: list[str]) -> str:
    """Results file named from the input folder it was found under, e.g.
    `out_vcwe/<model>/<date>_results.json` (the innermost matching folder wins)."""
    path = os.path.abspath(path)
    best = os.path.basename(path)
    for root in map(os.path.abspath, roots):
        if os.path.isdir(root) and path.startswith(root.rstrip(os.sep) + os.sep):
            rel = os.path.join(os.path.basename(root.rstrip(os.sep)), os.path.relpath(path, root))
            if best == os.path.basename(path) or len(rel) < len(best):
                best = rel
    return best
