"""SQL over an App's log for the notebook views, whatever the store (DuckDB or in-memory)."""

from __future__ import annotations

from typing import Any

__all__ = ["events_sql", "frame"]


def _relation(app: Any) -> str:
    # The runner reads a DuckDB store's own ``events`` table; for other stores it mirrors
    # the log into DuckDB under a private name. (Ask the runner; default to ``events``.)
    return app.projections.events_relation


def events_sql(app: Any, query: str) -> str:
    """``query`` (a SELECT or WITH over ``events``) rewritten to run on the App's runner."""
    rel = _relation(app)
    if rel in ("events", "main.events"):
        return query
    return f"WITH events AS (SELECT * FROM {rel}) SELECT * FROM ({query})"


def frame(app: Any, query: str, params: Any = None) -> Any:
    """A query over ``events`` (and projection tables) as a pandas DataFrame."""
    return app.sql(events_sql(app, query), params)
