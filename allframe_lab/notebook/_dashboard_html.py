"""Display helpers of the Panel dashboard: escaping, table frames, the chart, the waterfall."""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["esc", "fmt_time", "for_display", "show", "types_chart", "waterfall"]


def esc(text: Any) -> str:
    """``text`` escaped for HTML (attributes too)."""
    return html.escape(str(text), quote=True)


def fmt_time(value: Any) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS UTC`` (``-`` for None)."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def for_display(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The frame a table shows, and column titles: times in UTC without a zone, durations
    in hours (numbers, so they sort), nested values as JSON text."""
    import pandas as pd

    out = df.copy()
    titles: dict[str, str] = {}
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            out[col] = s.dt.tz_convert(None)
            titles[str(col)] = f"{col} (UTC)"
        elif pd.api.types.is_timedelta64_dtype(s):
            out[col] = (s.dt.total_seconds() / 3600).round(3)
            titles[str(col)] = f"{col} (h)"
        elif s.dtype == object and len(s) and isinstance(s.iloc[0], dict | list):
            out[col] = [json.dumps(v, default=str) for v in s]
    return out, titles


def show(table: Any, df: pd.DataFrame | None) -> None:
    """Put a frame into a Tabulator, converted for display."""
    if df is None:
        table.value = None
        return
    value, titles = for_display(df)
    table.param.update(value=value, titles=titles)


def types_chart(types: pd.DataFrame) -> Any:
    """A Bokeh bar chart of events per type (``types``: columns type, events)."""
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure

    names = types.type.astype(str).tolist()[::-1]
    fig = figure(y_range=names, height=max(160, 22 * len(names) + 60), title="events per type",
                 toolbar_location=None, sizing_mode="stretch_width", x_axis_label="events")
    fig.hbar(y="type", right="events", height=0.7,
             source=ColumnDataSource({"type": names, "events": types.events.tolist()[::-1]}))
    fig.x_range.start = 0
    return fig


def waterfall(spans: pd.DataFrame, limit: int = 200) -> str:
    """Spans as horizontal bars on one time axis (at most ``limit``)."""
    if spans.empty:
        return ""
    rows = spans.head(limit)
    t0, t1 = int(rows.start_ns.min()), int(rows.end_ns.max())
    total = max(t1 - t0, 1)
    bars = []
    for r in rows.itertuples():
        left = (r.start_ns - t0) / total * 100
        width = max((r.end_ns - r.start_ns) / total * 100, 0.3)
        color = "#d9534f" if r.status == "error" else "#4a7ebb"
        bars.append(
            f'<div class="allframe-dashboard-span" data-span-id="{esc(r.span_id)}" '
            f'style="display:flex;align-items:center;height:20px">'
            f'<div style="width:30%;overflow:hidden;white-space:nowrap">{esc(r.name)}</div>'
            f'<div style="position:relative;width:70%;height:14px">'
            f'<div style="position:absolute;left:{left:.2f}%;width:{width:.2f}%;height:100%;'
            f'background:{color}" title="{r.duration_ms:.3f} ms"></div></div></div>')
    return '<div style="margin-top:8px">' + "".join(bars) + "</div>"
