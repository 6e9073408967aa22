"""PNG plots: headline accuracy against frame count per benchmark, and memory/prefill
against frames from `--bench` rows. Runs are lines, published results are markers (or a
dotted level when the paper gives a rate such as "0.5 fps" instead of a frame count)."""

from __future__ import annotations

import logging
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # headless: the report runs on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter  # noqa: E402

log = logging.getLogger("lvu_ext.report")

REF_MARKERS = ("s", "^", "D", "v", "P", "*", "X", "h")
# Runs with identical scores would hide each other: vary line style and marker size too.
RUN_STYLES = (("o", "-", 10), ("s", "--", 7), ("^", "-.", 5), ("D", ":", 3))  # later series drawn smaller, on top


def _series_label(item, is_reference=False) -> str:
    tag = " [ref]" if is_reference else ""
    fps = f" @{item.frames.label}" if getattr(item.frames, "fps", None) is not None else ""
    return f"{item.model} {item.settings}{fps}{tag}"


class _Styles:
    """One colour per series label, shared by all panels of a figure."""

    def __init__(self):
        self.colors: dict[str, object] = {}
        self.markers: dict[str, str] = {}
        self.run_styles: dict[str, tuple] = {}
        self.cmap = plt.get_cmap("tab10")

    def color(self, label):
        if label not in self.colors:
            self.colors[label] = self.cmap(len(self.colors) % 10)
        return self.colors[label]

    def run_style(self, label) -> dict:
        if label not in self.run_styles:
            self.run_styles[label] = RUN_STYLES[len(self.run_styles) % len(RUN_STYLES)]
        marker, linestyle, size = self.run_styles[label]
        return {"marker": marker, "linestyle": linestyle, "markersize": size, "color": self.color(label)}

    def marker(self, label):
        if label not in self.markers:
            self.markers[label] = REF_MARKERS[len(self.markers) % len(REF_MARKERS)]
        return self.markers[label]


def _log2_axis(ax, xs):
    ax.set_xscale("log", base=2)
    ticks = sorted(set(xs))
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter())


def _draw_accuracy(ax, bench, records, references, styles) -> bool:
    """Returns False when the benchmark has nothing to draw."""
    xs = []
    series = defaultdict(list)
    for rec in records:
        if rec.benchmark.key != bench.key:
            continue
        if rec.frames.count is None:
            log.info("not plotted (frame count unknown): %s %s, %s", rec.model, rec.settings, rec.task)
            continue
        series[_series_label(rec)].append((rec.frames.count, rec.scores[bench.main]))
    for label, points in sorted(series.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], label=label, **styles.run_style(label))
        xs += [p[0] for p in points]
    levels = []
    dodge = defaultdict(int)  # published points sharing a frame count are spread apart a little
    for ref in references:
        if ref.benchmark.key != bench.key or not ref.plot or bench.main not in ref.scores:
            continue
        label = _series_label(ref, is_reference=True)
        y = ref.scores[bench.main]
        if ref.frames.count is None:
            levels.append((label + f" ({ref.frames.label})", y))
            continue
        x = ref.frames.count * 2 ** (0.07 * dodge[ref.frames.count])
        dodge[ref.frames.count] += 1
        ax.plot([x], [y], linestyle="none", marker=styles.marker(label), color=styles.color(label), markersize=8, label=label)
        xs.append(ref.frames.count)
    for label, y in levels:
        ax.axhline(y, linestyle=":", color=styles.color(label), label=label)
    if not xs and not levels:
        return False
    if xs:
        _log2_axis(ax, xs)
    ax.set_title(f"{bench.title} {bench.main}")
    ax.set_xlabel("frames")
    ax.set_ylabel("accuracy (%)")
    ax.grid(True, alpha=0.3)
    return True


def _legend_below(fig, axes):
    handles, labels = {}, []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    ncol = 1 if max((len(lab) for lab in labels), default=0) > 60 else 2
    fig.legend([handles[lab] for lab in labels], labels, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
    rows = (len(labels) + ncol - 1) // ncol
    # room in inches for the x label plus ~0.15 in per legend line, as a figure fraction
    fig.subplots_adjust(bottom=min(0.6, (0.6 + 0.15 * rows) / fig.get_figheight()))


def accuracy_plots(benchmarks, records, references, out_dir) -> list[str]:
    """One PNG per benchmark plus `accuracy_vs_frames.png` with all of them side by side."""
    written = []
    drawn = []
    for bench in benchmarks:
        fig, ax = plt.subplots(figsize=(7, 5))
        if _draw_accuracy(ax, bench, records, references, _Styles()):
            _legend_below(fig, [ax])
            path = f"{out_dir}/accuracy_{bench.key}.png"
            fig.savefig(path, dpi=120, bbox_inches="tight")
            written.append(path)
            drawn.append(bench)
        plt.close(fig)
    if drawn:
        styles = _Styles()
        fig, axes = plt.subplots(1, len(drawn), figsize=(5.5 * len(drawn), 6.5), squeeze=False)
        for ax, bench in zip(axes[0], drawn):
            _draw_accuracy(ax, bench, records, references, styles)
        _legend_below(fig, axes[0])
        path = f"{out_dir}/accuracy_vs_frames.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def memory_plot(bench_rows, references, out_dir) -> str | None:
    """Peak memory (and prefill time when recorded) against frames; failed cases (OOM...) are
    red crosses on the top edge, as they have no memory figure."""
    if not bench_rows:
        return None
    with_prefill = any(r.prefill_s is not None for r in bench_rows)
    fig, axes = plt.subplots(1, 2 if with_prefill else 1, figsize=(12 if with_prefill else 7, 5.5), squeeze=False)
    styles = _Styles()
    panels = [("peak_mem_gb", "peak memory (GB)")] + ([("prefill_s", "prefill time (s)")] if with_prefill else [])
    machines = sorted({r.machine for r in bench_rows if r.machine})
    # The paper's figures are 7B on a GPU: next to a CPU run they would only squash its lines.
    show_paper = any(not r.device or r.device.startswith("cuda") for r in bench_rows)
    xs = [r.frames for r in bench_rows]
    for ax, (attr, ylabel) in zip(axes[0], panels):
        by_case = defaultdict(list)
        for r in bench_rows:
            by_case[f"{r.case} [{r.machine}]" if len(machines) > 1 else r.case].append(r)
        for case, rows in sorted(by_case.items()):
            ok = sorted((r.frames, getattr(r, attr)) for r in rows if r.ok and getattr(r, attr) is not None)
            if ok:
                ax.plot([p[0] for p in ok], [p[1] for p in ok], label=case, **styles.run_style(case))
        failed = [r for r in bench_rows if r.failed]  # ran and failed; 'skipped' rows never ran
        if failed:
            ax.plot(
                [r.frames for r in failed],
                [1.0] * len(failed),
                "x",
                color="red",
                markersize=10,
                transform=ax.get_xaxis_transform(),
                clip_on=False,
                label="failed (OOM / timeout / error)",
            )
        if attr == "peak_mem_gb" and show_paper:
            for ref in references:
                if ref.peak_mem_gb is not None and ref.frames.count is not None:
                    label = f"paper: {ref.settings}"
                    ax.plot([ref.frames.count], [ref.peak_mem_gb], linestyle="none", marker=styles.marker(label), color=styles.color(label), label=label)
                    xs.append(ref.frames.count)
        _log2_axis(ax, xs)
        ax.set_xlabel("frames")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    if machines:
        fig.suptitle("; ".join(machines), fontsize=9)
    _legend_below(fig, axes[0])
    path = f"{out_dir}/memory_vs_frames.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
