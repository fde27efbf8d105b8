"""The digest chart: a topic's papers per month by the date PubMed received them, as a small deterministic PNG.

PubMed's create date [crdt], not the day the tracker first saw a paper: a new install's first backfill then
already shows the topic's trend over the last 24 months, instead of one bar in the current month.
"""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta, timezone

from tracker.store import Store
from tracker.store.digests import monthly_received_counts
from tracker.text import as_utc

CHART_MONTHS = 24
WIDTH_PX, HEIGHT_PX, DPI = 700, 220, 100
CHART_TITLE = "Papers per month by the date PubMed received them (pale bar: this month so far)"
_BAR = "#3b6ea5"
_CURRENT = "#a9c1dc"


def chart_months(end: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the chart: the 24 calendar months up to and including `end`'s month."""
    months_back = end.year * 12 + end.month - 1 - (CHART_MONTHS - 1)
    start = datetime(months_back // 12, months_back % 12 + 1, 1, tzinfo=end.tzinfo)
    return start, end


def chart_png(store: Store, topic_slug: str, *, end: datetime | date) -> bytes:
    """The PNG chart of `topic_slug` for the 24 months up to `end` (a date means up to the end of that day)."""
    if not isinstance(end, datetime):
        end = datetime.combine(end + timedelta(days=1), time.min, timezone.utc)
    else:
        end = as_utc(end)
    start, end = chart_months(end)
    return render_chart_png(monthly_received_counts(store, topic_slug, start.date(), end.date() + timedelta(days=1)))


def render_chart_png(counts: list[tuple[date, int]]) -> bytes:
    """A bar per month; the last (current, still filling) month is lighter. Same counts, same bytes."""
    # Figure and the Agg canvas directly: no pyplot, so no global backend switch and no GUI import.
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    with matplotlib.rc_context({"font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 9}):
        # Constrained layout keeps the size and makes room for every label: a count of four or five digits on the
        # y-axis no longer runs off the left edge.
        figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        values = [count for _, count in counts]
        colors = [_BAR] * len(values)
        if colors:
            colors[-1] = _CURRENT
        axes.bar(range(len(values)), values, color=colors, width=0.8)
        axes.set_title(CHART_TITLE, loc="left")
        axes.set_ylabel("papers")
        axes.set_xlim(-0.6, max(len(values), 1) - 0.4)
        axes.set_ylim(0, max(values + [1]) * 1.1)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        ticks = [i for i, (month, _) in enumerate(counts) if month.month in (1, 4, 7, 10)]
        axes.set_xticks(ticks, [counts[i][0].strftime("%b\n%Y") for i in ticks])
        axes.tick_params(axis="x", length=0)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        axes.grid(axis="y", color="#dddddd", linewidth=0.6)
        axes.set_axisbelow(True)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


__all__ = ["chart_png", "render_chart_png", "chart_months", "CHART_TITLE", "CHART_MONTHS"]
