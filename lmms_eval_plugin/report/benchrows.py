"""Rows of the performance benchmark JSONs given with `--bench`.

Assumed format (the bench tool's output is not fixed yet):
    {"rows": [{"case": str, "frames": int, "peak_mem_gb": float|null,
               "prefill_s": float|null, "visual_tokens": int, "status": "ok"|"OOM"}, ...]}
A bare top-level list of such rows is accepted too; unknown keys are ignored. `lvu-ext bench`
writes this (its bench.json), with status also "timeout", "error" or "skipped" (not run after
a smaller frame count failed), and `machine.device_name` / `settings.device` beside the rows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

log = logging.getLogger("lvu_ext.report")


@dataclass
class BenchRow:
    case: str
    frames: int
    peak_mem_gb: float | None
    prefill_s: float | None
    visual_tokens: int | None
    status: str
    source: str
    machine: str = ""
    device: str = ""  # settings.device of lvu-ext bench ("cuda:0", "cpu"); "" when not recorded

    @property
    def ok(self) -> bool:
        return self.status.lower() == "ok"

    @property
    def failed(self) -> bool:
        """Ran and failed (OOM, timeout, error); 'skipped' rows never ran."""
        return not self.ok and self.status.lower() != "skipped"


def _opt_float(value):
    return None if value is None else float(value)


def load_bench(path: str) -> list[BenchRow]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a list of rows under the top-level key 'rows'")
    machine = _machine(data) if isinstance(data, dict) else ""
    settings = data.get("settings") if isinstance(data, dict) else None
    device = str(settings.get("device") or "") if isinstance(settings, dict) else ""
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(
                BenchRow(
                    case=str(row["case"]),
                    frames=int(row["frames"]),
                    peak_mem_gb=_opt_float(row.get("peak_mem_gb")),
                    prefill_s=_opt_float(row.get("prefill_s")),
                    visual_tokens=None if row.get("visual_tokens") is None else int(row["visual_tokens"]),
                    status=str(row.get("status") or "ok"),
                    source=path,
                    machine=machine,
                    device=device,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("skipped row %d of %s: %r (%s)", i, path, row, exc)
    return out


def _machine(data: dict) -> str:
    machine, settings = data.get("machine"), data.get("settings")
    name = machine.get("device_name", "") if isinstance(machine, dict) else ""
    device = settings.get("device", "") if isinstance(settings, dict) else ""
    return ", ".join(x for x in (str(name), str(device)) if x)


def markdown_table(rows: list[BenchRow]) -> str:
    def num(v, fmt):
        return "" if v is None else format(v, fmt)

    lines = ["| Case | Frames | Visual tokens | Peak memory (GB) | Prefill (s) | Status | Machine |", "|---|---:|---:|---:|---:|---|---|"]
    for r in sorted(rows, key=lambda r: (r.machine, r.case, r.frames)):
        lines.append(
            f"| {r.case} | {r.frames} | {num(r.visual_tokens, 'd')} | {num(r.peak_mem_gb, '.2f')} | {num(r.prefill_s, '.2f')} | {r.status} | {r.machine} |"
        )
    return "\n".join(lines)
