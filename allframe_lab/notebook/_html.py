"""Small HTML helpers for the notebook layer's ``text/html`` fallbacks (no JavaScript)."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["STYLE", "esc", "json_text", "table", "text_table"]

#: Inline CSS shared by the fallbacks (scoped by the ``allframe-html`` class).
STYLE = (
    "<style>.allframe-html{font-family:var(--jp-ui-font-family,sans-serif);font-size:12px}"
    ".allframe-html table{border-collapse:collapse;margin:2px 0}"
    ".allframe-html th,.allframe-html td{border:1px solid #ddd;padding:2px 6px;"
    "text-align:left;vertical-align:top}"
    ".allframe-html th{background:#f4f4f4}"
    ".allframe-html caption{text-align:left;font-weight:bold;padding:2px 0}"
    ".allframe-html pre{margin:0;white-space:pre-wrap}"
    ".allframe-html .af-muted{color:#777}</style>"
)


def esc(value: Any) -> str:
    """HTML-escape ``str(value)`` (``None`` becomes an empty string)."""
    return "" if value is None else html.escape(str(value))


def json_text(value: Any) -> str:
    """Compact, readable JSON of a payload (non-JSON values are written with ``str``)."""
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=False)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str = "",
          raw_columns: Sequence[int] = ()) -> str:
    """An HTML table; cells are escaped except the columns listed in ``raw_columns``."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f"<td>{cell if i in raw_columns else esc(cell)}</td>" for i, cell in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def text_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
               max_width: int = 60) -> str:
    """A fixed-width plain-text table (cells longer than ``max_width`` are shortened)."""
    def cut(v: Any) -> str:
        s = "" if v is None else str(v)
        return s if len(s) <= max_width else s[: max_width - 1] + "…"

    cells = [[cut(h) for h in headers]] + [[cut(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
