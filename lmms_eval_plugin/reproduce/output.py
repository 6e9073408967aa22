"""reproduction.md / .csv / .png: one row per paper row, the paper's and the measured
differences side by side."""

from __future__ import annotations

import csv
from pathlib import Path

from lmms_eval_plugin.reproduce.failure import strip_ansi
from lmms_eval_plugin.reproduce.tables import Table
from lmms_eval_plugin.reproduce.verdict import DIFFERS, MIN_QUESTIONS, REPRODUCES, Line

COLUMNS = ("row", "label", "benchmark", "column", "source", "paper", "paper_delta", "measured", "measured_delta", "delta_gap",
           "tolerance", "verdict", "sample", "n", "peak_mem_gb", "paper_mem_gb", "harness", "revision", "results")


def _fmt(value, digits=1, signed=False) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return str(value)


def cells(line: Line) -> dict:
    m = line.measured
    return {
        "row": line.row.id, "label": line.row.label, "benchmark": line.row.benchmark, "column": line.row.column,
        "source": line.row.source, "paper": line.row.paper, "paper_delta": line.paper_delta,
        "measured": m.score if m else None, "measured_delta": line.measured_delta, "delta_gap": line.delta_gap,
        "tolerance": line.tolerance, "verdict": strip_ansi(line.verdict), "sample": line.sample, "n": m.n if m else None,
        # on CPU the records carry no peak memory: blank, said in the markdown
        "peak_mem_gb": m.peak_mem_gb if m else None, "paper_mem_gb": line.row.paper_mem_gb,
        "harness": m.harness if m else None, "revision": m.revision if m else None, "results": m.results_path if m else None,
    }


def _peak(line: Line) -> str:
    if line.measured is None:
        return ""
    return "not measured" if line.measured.peak_mem_gb is None else f"{line.measured.peak_mem_gb:.2f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_csv(lines: list[Line], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for line in lines:
            writer.writerow({k: ("" if v is None else v) for k, v in cells(line).items()})


def write_markdown(table: Table, lines: list[Line], header: list[str], path: Path, png: str | None) -> None:
    out = [f"# Reproduction: {table.title}", "", *header, ""]
    out += ["| row | paper | paper Δ | measured | measured Δ | Δ gap | tolerance | verdict | sample | n | peak GB | paper GB | source |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---|"]
    for line in lines:
        c = cells(line)
        out.append(f"| {c['label']} | {_fmt(c['paper'])} | {_fmt(c['paper_delta'], signed=True)} | {_fmt(c['measured'], 2)} | "
                   f"{_fmt(c['measured_delta'], 2, True)} | {_fmt(c['delta_gap'], 2, True)} | {_fmt(c['tolerance'], 2)} | {_cell(c['verdict'])} | {c['sample']} | "
                   f"{_fmt(c['n'])} | {_peak(line)} | {_fmt(c['paper_mem_gb'], 0)} | {c['source']} |")
    judged = [line for line in lines if line.verdict in (REPRODUCES, DIFFERS)]
    out += ["", f"Judged rows: {len(judged)}; reproduce: {sum(line.verdict == REPRODUCES for line in judged)}; "
                f"differ: {sum(line.verdict == DIFFERS for line in judged)}."]
    if png:
        out += ["", f"![paper and measured differences]({png})"]
    out += ["", "Δ is a row's score minus its baseline row's, in points (the baseline rows have Δ 0). Δ gap is measured Δ minus "
                "paper Δ. A row *reproduces* when |Δ gap| is within the tolerance: two standard errors of a difference of two "
                "accuracies at the paper's scores on the n questions scored (conservative: both rows answer the same questions). "
                "Absolute scores are not judged: they drift between harness versions. "
                f"Below {MIN_QUESTIONS} questions there is no verdict (the tolerance would pass nearly any row); on fewer than the "
                "benchmark's full set the *sample* column says how many and the interval the tolerance gives the paper's Δ. Peak GB is the largest "
                "`torch.cuda.max_memory_allocated` of any request, *not measured* off CUDA.",
            "", f"Paper: {table.citation}."]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def write_plot(lines: list[Line], path: Path) -> bool:
    rows = [line for line in lines if line.paper_delta is not None]
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.2))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [line.paper_delta for line in rows], width=0.4, label="paper Δ", color="#888888")
    measured = [(x, line) for x, line in zip(xs, rows) if line.measured_delta is not None]
    if measured:
        ax.bar([x + 0.2 for x, _ in measured], [line.measured_delta for _, line in measured], width=0.4, label="measured Δ",
               color="#1f77b4", yerr=[line.tolerance or 0 for _, line in measured], capsize=3)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(list(xs), [line.row.id for line in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("Δ from the baseline row (points)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
