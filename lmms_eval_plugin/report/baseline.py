"""The `Δ` columns: each run row's headline scores minus those of a baseline row of the
same checkpoint scored by the same harness version.

A published claim is a difference from the same backbone's baseline, and absolute numbers
move between lmms-eval versions (answer extraction and aggregation get rewritten), so only
a difference taken within one harness version carries over. The baseline row is a run row
with the same model (checkpoint id), the same checkpoint revision, the same known lmms-eval
version, the frame count of `--baseline SETTINGS@FRAMES` and model args (defaults included,
read from the run manifest) that contain every `key=value` of SETTINGS. Reference rows have
no Δ unless their source names the harness version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lmms_eval_plugin.report.provenance import UNKNOWN
from lmms_eval_plugin.report.runinfo import FRAME_KEYS, IDENTITY_KEYS, RUNTIME_KEYS

DEFAULT_BASELINE = "rope_ext=none,pooling=native@32"
# the frame labels of report rows (runinfo.Frames.label): a count, or a rate with its cap
_FRAMES = re.compile(r"[1-9]\d*|\d+(?:\.\d+)?fps(?:<=[1-9]\d*)?")


@dataclass(frozen=True)
class BaselineSpec:
    settings: tuple[tuple[str, str], ...]
    frames: str

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.settings) + f"@{self.frames}"


def parse_baseline(spec: str) -> BaselineSpec:
    settings, sep, frames = spec.rpartition("@")
    if not sep or not frames.strip():
        raise ValueError(f"--baseline {spec!r}: expected SETTINGS@FRAMES, e.g. {DEFAULT_BASELINE}")
    if not _FRAMES.fullmatch(frames.strip()):
        raise ValueError(f"--baseline {spec!r}: frame count {frames.strip()!r} is neither a count (e.g. 32) nor a rate (e.g. 1fps<=512)")
    pairs = []
    for part in filter(None, (p.strip() for p in settings.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--baseline {spec!r}: {part!r} is not key=value")
        pairs.append((key.strip(), value.strip()))
    return BaselineSpec(tuple(pairs), frames.strip())


def check_frames_present(spec: BaselineSpec, labels: set[str]) -> str:
    """'' when some run has the baseline's frames, else the message naming what the runs have."""
    if spec.frames in labels:
        return ""
    return f"--baseline {spec.label}: no run has {spec.frames} frames (the runs have: {', '.join(sorted(labels)) or 'none'}), so no row gets a Δ"


def _is_baseline(row, spec: BaselineSpec) -> bool:
    return row.frames.label == spec.frames and all(row.effective_args.get(k) == v for k, v in spec.settings)


def _other_settings(row, spec: BaselineSpec) -> dict:
    skip = set(IDENTITY_KEYS) | set(FRAME_KEYS) | set(RUNTIME_KEYS) | {k for k, _ in spec.settings}
    return {k: v for k, v in row.effective_args.items() if k not in skip}


def find_baseline(row, runs, spec: BaselineSpec):
    """(baseline row or None, why there is none)."""
    if row.harness == UNKNOWN:
        return None, "lmms-eval version unknown: no same-harness baseline"
    same = [b for b in runs if (b.model, b.revision, b.harness) == (row.model, row.revision, row.harness) and _is_baseline(b, spec)]
    if len(same) > 1:  # e.g. baselines in float32 and bfloat16: take the one run like this row
        same = [b for b in same if _other_settings(b, spec) == _other_settings(row, spec)]
    if len(same) == 1:
        return same[0], ""
    if not same:
        return None, f"no {spec.label} run of this checkpoint with lmms-eval {row.harness}"
    return None, f"{len(same)} rows match {spec.label}: ambiguous, no Δ"


def assign_deltas(rows, headline_cols, spec: BaselineSpec) -> None:
    """Fill `row.deltas` ({(benchmark key, column): difference}) and `row.baseline` for run rows."""
    runs = [r for r in rows if not r.is_reference]
    for row in runs:
        base, why = find_baseline(row, runs, spec)
        if base is None:
            row.baseline = ""
            if why and row.scores:
                row.notes.append(f"Δ: {why}")
            continue
        row.baseline = "self" if base is row else f"{base.settings} @ {base.frames.label}"
        for bench, col in headline_cols:
            key = (bench.key, col)
            if key in row.scores and key in base.scores:
                row.deltas[key] = row.scores[key] - base.scores[key]
