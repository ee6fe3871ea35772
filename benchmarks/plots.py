"""PNG figures of the benchmark report (matplotlib, no display needed): one function per figure."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

Timeline = Sequence[tuple[float, float]]  # (time.time(), reads so far)
PLAIN = FuncFormatter(lambda value, _: f"{value:,.0f}")  # 100, 200 on log axes, not 10^2, 2x10^2
COLOURS = {"raw": "#7f7f7f", "worker": "#1f77b4", "floor": "#2ca02c", "faust": "#d62728", "faust_db": "#ff7f0e"}


def rates(timeline: Timeline, window: float = 0.5) -> list[tuple[float, float]]:
    """(seconds since the first sample, reads/s over the window ending there), counts interpolated linearly."""
    if len(timeline) < 2:
        return []
    t0 = timeline[0][0]
    end = timeline[-1][0] - t0
    if end < 2 * window:  # too short for windows: its average, drawn as a flat segment
        rate = (timeline[-1][1] - timeline[0][1]) / end if end > 0 else 0.0
        return [(0.0, rate), (end, rate)]

    def count_at(x: float) -> float:
        for (ta, na), (tb, nb) in itertools.pairwise(timeline):
            if ta - t0 <= x <= tb - t0:
                return na if tb == ta else na + (nb - na) * (x - (ta - t0)) / (tb - ta)
        return timeline[-1][1]

    out = []
    x = window
    while x <= end + 1e-9:
        out.append((x, (count_at(x) - count_at(x - window)) / window))
        x += window
    return out


def throughput(timelines: Mapping[str, tuple[str, Timeline]], path: Path) -> None:
    """Reads/s over time, one line per contender (key: colour name; value: label and timeline)."""
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for key, (label, timeline) in timelines.items():
        points = rates(timeline)
        if points:
            marker = "o" if len(points) <= 3 else None  # a run shorter than a second is a short segment
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            ax.plot(xs, ys, label=label, color=COLOURS.get(key), lw=1.8, marker=marker, ms=4)
    ax.set_yscale("log")
    ax.set_xlabel("seconds since the contender's first read")
    ax.set_ylabel("reads/s (0.5 s windows, log scale)")
    ax.set_title("Throughput on the same backlog of zone traffic")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def latency_cdf(samples_ms: Sequence[float], summary: Mapping[str, Any], path: Path) -> None:
    """Cumulative distribution of end-to-end hit latency at one offered rate (`summary`: its latency row)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    data = sorted(samples_ms)
    if data:
        ys = [(i + 1) / len(data) for i in range(len(data))]
        ax.plot(data, ys, color=COLOURS["worker"], lw=1.8)
        for name, style in (("p50", "--"), ("p99", ":")):
            value = summary[f"{name}_ms"]
            ax.axvline(value, color="#444", ls=style, lw=1, label=f"{name} {value:.0f} ms")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(PLAIN)
    ax.xaxis.set_minor_formatter(PLAIN)
    ax.set_xlabel("ms from the read's Kafka append to the hit readable (read_committed) on the hits topic")
    ax.set_ylabel("share of hits")
    offered, achieved = summary["offered_rate"], summary["achieved_rate"]
    ax.set_title(f"Hit latency at {offered:,} reads/s offered ({achieved:,} achieved; {len(data)} dispatched hits)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def watchlist_size(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Match-stage cost (µs per read) against list size, one line per policy."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for policy, colour in (("exact+ocr", COLOURS["worker"]), ("fuzzy:1", COLOURS["faust_db"])):
        # The core the worker uses: the native twin when it loaded in the run, else the reference.
        cores = {r.get("implementation", "python") for r in rows}
        core = "native" if "native" in cores else "python"
        points = [
            (r["entries"], r["us_per_read"])
            for r in rows
            if r["policy"] == policy and r.get("implementation", "python") == core
        ]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=policy, color=colour, lw=1.8)
    ax.set_xscale("log")
    ax.set_xlabel("watchlist entries (synthetic plates in the zone's formats)")
    ax.set_ylabel("µs per read (classify, in process)")
    ax.set_ylim(bottom=0)
    ax.set_title("Match-stage cost against watchlist size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def latency_vs_rate(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Hit latency p50 and p99 against the achieved rate."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    rows = [r for r in rows if r.get("p50_ms") is not None]
    xs = [r["achieved_rate"] for r in rows]
    ax.plot(xs, [r["p50_ms"] for r in rows], "o-", label="p50", color=COLOURS["worker"], lw=1.8)
    ax.plot(xs, [r["p99_ms"] for r in rows], "s--", label="p99", color=COLOURS["faust"], lw=1.8)
    for r in rows:
        ax.annotate(f"offered {r['offered_rate']:,}", (r["achieved_rate"], r["p99_ms"]), fontsize=7,
                    textcoords="offset points", xytext=(4, 6))  # fmt: skip
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PLAIN)
    ax.yaxis.set_minor_formatter(PLAIN)
    ax.set_xlabel("reads/s achieved by the load generator")
    ax.set_ylabel("hit latency, ms (log scale)")
    ax.set_title("Hit latency against offered load (one worker, every passage to PostgreSQL)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
