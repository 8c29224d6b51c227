"""The HTML summary a notebook shows for a Results: counts, wall time, the first ranks, failure classes.

Kept small on purpose: a 10,000-rank job must not put 10,000 rows into the
notebook file; ``res.to_pandas()`` is there for the whole table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from html import escape
from typing import Any

FIRST_RANKS = 5


def _row(cells: Sequence[Any], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{escape(str(cell))}</{tag}>" for cell in cells) + "</tr>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return "<table>" + _row(header, "th") + "".join(_row(row) for row in rows) + "</table>"


def _wall_time(results: Any) -> str:
    try:
        return f"{results.report().wall:.2f} s"
    except Exception:  # a report the farm cannot give must not hide the rest of the summary
        return "?"


def _summary(results: Any) -> str:
    statuses = Counter(rank.status for rank in results)
    rows = [("ranks", len(results)), ("succeeded", statuses["succeeded"]), ("failed", statuses["failed"]),
            ("cancelled", statuses["cancelled"]), ("wall time", _wall_time(results))]
    return _table(("job", results.job_id), rows)


def _first_ranks(results: Any) -> str:
    rows = [(r, rank.status, rank.exit_code, rank.worker, f"{rank.duration:.3f} s")
            for r, rank in zip(range(FIRST_RANKS), results)]
    more = len(results) - len(rows)
    caption = f"<p>first {len(rows)} of {len(results)} ranks</p>" if more > 0 else ""
    return caption + _table(("rank", "status", "exit", "worker", "duration"), rows)


def _failure_classes(results: Any) -> str:
    classes = Counter(rank.failure_class for rank in results.failed if rank.failure_class)
    if not classes:
        return ""
    return "<p>failures by whose fault</p>" + _table(("class", "ranks"), sorted(classes.items()))


def results_html(results: Any) -> str:
    """The summary of a pesc.Results as one HTML fragment."""
    return ("<div class=\"pesc-results\">" + _summary(results) + _first_ranks(results)
            + _failure_classes(results) + "</div>")
