"""A job's timeline as a matplotlib figure, drawn from the library's report.

The lanes, bars and figures all come from ``JobReport`` (libpesc), so this
file only draws; the SVG that ``JobReport.timeline_svg()`` writes is the
same picture without matplotlib.
"""

from __future__ import annotations

from typing import Any, Optional

from ._core import JobReport

_COLOURS = {"succeeded": "#4c78a8", "failed": "#e45756"}
_OTHER = "#9d9d9d"
_FARM_ONLY = "#fde7c9"  # no rank running yet / any more
_PAUSED = "#d9d9d9"  # a worker took no new ranks (hatched, as in the SVG)


def timeline(report: JobReport, ax: Optional[Any] = None) -> Any:
    """Draws one row per worker slot and a bar per rank on ``ax`` (a new figure when None); returns ``ax``."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    lanes = report.lanes
    own_figure = ax is None
    if own_figure:
        height = min(0.25 * max(len(lanes), 1) + 1.8, 9)
        _, ax = plt.subplots(figsize=(10, height))
    for stretch in report.paused_stretches:  # behind the ranks, as in the SVG
        ax.broken_barh([(stretch.start, stretch.end - stretch.start)], (stretch.first_lane - 0.5, stretch.lanes),
                       facecolors=_PAUSED, hatch="//", edgecolor="#8c8c8c", linewidth=0, zorder=0.5)
    bars: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for bar in report.timeline:
        bars.setdefault((bar.lane, bar.status), []).append((bar.start, bar.end - bar.start))
    for (lane, status), spans in bars.items():
        ax.broken_barh(spans, (lane - 0.4, 0.8), facecolors=_COLOURS.get(status, _OTHER), edgecolor="white",
                       linewidth=0.5)
    if len(lanes) <= 30:  # rank numbers where the bars are wide enough to hold them
        for bar in report.timeline:
            if bar.end - bar.start > 0.03 * report.wall:
                ax.text((bar.start + bar.end) / 2, bar.lane, str(bar.rank), ha="center", va="center", color="white",
                        fontsize=7)
    if report.timeline:
        first = min(bar.start for bar in report.timeline)
        last = max(bar.end for bar in report.timeline)
        ax.axvspan(0, first, color=_FARM_ONLY, zorder=0)
        ax.axvspan(last, report.wall, color=_FARM_ONLY, zorder=0)
    ax.set_xlim(0, max(report.wall, 1e-3))
    ax.set_ylim(len(lanes) - 0.5, -0.5)  # first lane on top, as in the SVG
    if len(lanes) <= 40:
        ax.set_yticks(range(len(lanes)), lanes)
    else:
        ax.set_yticks([w.first_lane for w in report.workers], [w.worker for w in report.workers])
    ax.set_xlabel("seconds since the job was submitted")
    ax.set_title(f"job {report.job_id}: {report.ranks} ranks, wall {report.wall:.3f} s, speedup "
                 f"{report.speedup:.2f} on {report.slots} slots (efficiency {100 * report.efficiency:.0f}%)",
                 fontsize=10)
    legend = [Patch(color=_COLOURS["succeeded"], label="succeeded"), Patch(color=_COLOURS["failed"], label="failed"),
              Patch(color=_FARM_ONLY, label="no rank running (submit, dispatch, collect)")]
    if report.paused_stretches:
        legend.append(Patch(facecolor=_PAUSED, hatch="//", edgecolor="#8c8c8c", label="worker paused"))
    if own_figure:
        figure = ax.figure
        figure.legend(handles=legend, loc="lower center", ncol=3, fontsize=8, frameon=False)
        figure.tight_layout(rect=(0, 0.3 / figure.get_figheight(), 1, 1))
    else:
        ax.legend(handles=legend, fontsize=8)
    return ax
