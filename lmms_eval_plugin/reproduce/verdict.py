"""Row by row: the paper's difference from its baseline row against the measured one, and
whether they agree within sampling noise.

Tolerance. A row's measured difference is judged against the paper's within two standard
errors of a difference of two accuracies on the n questions scored:
    tol = 2 * 100 * sqrt(p_row (1 - p_row) / n + p_base (1 - p_base) / n)   (points)
with p the paper's scores as fractions. Both rows answer the same questions, so the true
noise of a paired difference is smaller: the bound is conservative, it flags a gain that is
clearly not there, it does not certify a small one. On Video-MME (2,700 questions, p near
0.6) it is about 2.7 points. MLVU's M-Avg is a mean of per-type accuracies; the binomial
bound is an approximation there.

Sample. Below MIN_QUESTIONS questions there is no verdict ("too few questions to decide"):
at n = 100 and p near 0.6 the tolerance is already 14 points, nearly three times the largest
difference in the paper's tables (+5.1), and the normal approximation behind it wants
n p (1 - p) well above 10; fewer questions would let any row "reproduce". From
MIN_QUESTIONS up to the benchmark's full set (FULL_SET) the verdict stands but says the
sample it rests on and the interval its tolerance gives the paper's Δ."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lmms_eval_plugin.reproduce.tables import Row, Table

REPRODUCES = "reproduces"
DIFFERS = "differs"
MIN_QUESTIONS = 100
# Questions of each benchmark's full scored set, as the harness scores it (the papers'
# tables): Video-MME 900 videos x 3; MLVU dev's 7 multiple-choice types; LongVideoBench val.
FULL_SET = {"videomme": 2700, "mlvu_dev": 2174, "longvideobench_val_v": 1337}


@dataclass
class Measured:
    score: float  # percent, the harness's own number (report/collect.py)
    n: int | None  # questions scored
    harness: str
    revision: str
    limit: object = None
    peak_mem_gb: float | None = None
    results_path: str = ""


@dataclass
class Line:
    row: Row
    status: str  # measured | failed | not run | not runnable
    measured: Measured | None = None
    paper_delta: float | None = None
    measured_delta: float | None = None
    tolerance: float | None = None
    verdict: str = ""
    sample: str = ""  # the sample a verdict rests on, when not the benchmark's full set

    @property
    def delta_gap(self) -> float | None:
        if self.paper_delta is None or self.measured_delta is None:
            return None
        return self.measured_delta - self.paper_delta


def tolerance(p_row: float, p_base: float, n: int) -> float:
    a, b = p_row / 100, p_base / 100
    return 200 * math.sqrt(a * (1 - a) / n + b * (1 - b) / n)


def compare(table: Table, measured: dict[str, Measured], failed: dict[str, str]) -> list[Line]:
    lines = []
    for row in table.rows:
        base = table.baseline_of(row)
        paper_delta = None if row.baseline is None else row.paper - base.paper
        if not row.runnable:
            lines.append(Line(row, "not runnable", paper_delta=paper_delta, verdict=f"not runnable: {row.why}"))
            continue
        got = measured.get(row.id)
        if got is None:
            status = "failed" if row.id in failed else "not run"
            lines.append(Line(row, status, paper_delta=paper_delta, verdict=failed.get(row.id, "not run")))
            continue
        line = Line(row, "measured", got, paper_delta)
        if row.baseline is None:
            line.measured_delta, line.verdict = 0.0, "baseline"
        elif row.baseline not in measured:
            line.verdict = f"no verdict: baseline row {row.baseline} has no measurement"
        else:
            _judge(line, measured[row.baseline], base)
        lines.append(line)
    return lines


def _judge(line: Line, base_measured: Measured, base: Row) -> None:
    got = line.measured
    line.measured_delta = got.score - base_measured.score
    if (got.harness, got.revision) != (base_measured.harness, base_measured.revision):
        line.verdict = "no verdict: scored by another harness version or checkpoint revision than its baseline row"
        return
    if got.limit is not None or base_measured.limit is not None:
        line.verdict = "no verdict: --limit scores a subset, not the benchmark the paper scored"
        return
    n = min(x for x in (got.n, base_measured.n) if x) if (got.n or base_measured.n) else None
    if not n:
        line.verdict = "no verdict: the results name no sample count"
        return
    line.tolerance = tolerance(line.row.paper, base.paper, n)
    full = FULL_SET.get(line.row.benchmark)
    if n < MIN_QUESTIONS:
        line.verdict = f"no verdict: too few questions to decide ({n} scored; a verdict needs at least {MIN_QUESTIONS})"
        line.sample = f"{n} of {f'{full:,}' if full else 'the full set of'} questions"
        return
    line.verdict = REPRODUCES if abs(line.delta_gap) <= line.tolerance else DIFFERS
    if full is None or n < full:
        low, high = line.measured_delta - line.tolerance, line.measured_delta + line.tolerance
        line.sample = (f"{n} of {f'{full:,}' if full else 'an unknown number of'} questions: the paper's Δ {line.paper_delta:+.1f} "
                       f"reproduces within [{low:+.1f}, {high:+.1f}]")
