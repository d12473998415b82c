"""The query side: a query bus routing queries by name, and the read side they use.

A query handler ``fn(query, reads)`` reads projections through ``reads``
(:class:`ReadSide`): ``reads.table(name)`` starts a query of the DSL in
:mod:`allframe_lab.runtime.query_dsl`, ``reads.sql(...)`` runs raw SQL. Before a projection
is read it is brought to the required position (by default the position of the caller's
last command: read your writes); a projection followed on a background thread is waited
for, up to a timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import QueryError, UnknownNameError
from allframe_lab.model import Query, SqlProjection
from allframe_lab.model.validation import validate_message
from allframe_lab.runtime._frames import query_records
from allframe_lab.runtime.query_dsl import Select, select

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from allframe_lab.runtime.app import App

__all__ = ["QueryBus", "ReadSide"]

#: ``records()`` of a query limited to at most this many rows skips the pandas frame when
#: it can (see :func:`allframe_lab.runtime._frames.query_records`): ``one()``, ``first()``, paging.
#: Larger results keep the frame path: a NULL found late would make the query run twice.
_PLAIN_LIMIT = 1_000


def _table_of(decl: Any) -> str:
    return decl.table if isinstance(decl, SqlProjection) else decl.__table__  # type: ignore[no-any-return]


class ReadSide:
    """Read access to projections, consistent up to a position.

    Parameters
    ----------
    app : App
    position : int
        Projections read through this object reflect at least this log position.
    consistent : bool
        If False, read tables as they are (no catch-up, no wait).
    timeout : float
        Seconds to wait for projections followed in the background.
    """

    def __init__(self, app: App, *, position: int, consistent: bool = True,
                 timeout: float = 5.0) -> None:
        self.app = app
        self.position = position
        self.consistent = consistent
        self.timeout = timeout
        self._ready: set[str] = set()

    def _ensure(self, table: str) -> None:
        """Bring the projection that owns ``table`` to the required position."""
        if not self.consistent or table in self._ready:
            return
        owner = self._owner(table)
        if owner is not None:
            name = owner[0]
            subs = self.app.__dict__.get("subscriptions")
            if subs is not None and subs._followed.get(name):  # background: wait for it
                subs.wait_for(self.position, names=[name], timeout=self.timeout)
            elif (not getattr(self.app.store, "read_only", False)
                  and self.app.projections.checkpoint(name) < self.position):
                self.app.projections.catch_up(name)
        self._ready.add(table)

    def table(self, name: str, /) -> Select:
        """A DSL query over a table: ``.where(...).order_by(...).limit(n).df()``."""
        return Select(select(name).table, runner=self)

    def projection(self, name: str, /) -> pd.DataFrame:
        """A whole projection as a DataFrame."""
        return self.table(_table_of(self.app.model.projection_decl(name))).df()

    def sql(self, query: str, params: Any = None, *, tables: tuple[str, ...] = ()
            ) -> pd.DataFrame:
        """Raw SQL (values as ``?`` parameters). Name the projection tables it reads in
        ``tables`` to make them consistent first; by default every projection is."""
        for t in tables or self._all_tables():
            self._ensure(t)
        return self.app.projections.sql(query, params)

    def _all_tables(self) -> list[str]:
        return [_table_of(d) for d in self.app.model.projections.values()]

    def _owner(self, table: str) -> tuple[str, Any] | None:
        """The projection (name, declaration) whose table this is, if any."""
        return next(((n, d) for n, d in self.app.model.projections.items()
                     if _table_of(d) == table), None)

    def run(self, q: Select, *, count: bool = False) -> pd.DataFrame:
        """Execute a DSL query (used by :class:`Select`)."""
        compiled = self._compile(q, count=count)
        if not isinstance(compiled, tuple):
            return compiled
        return self.app.projections.sql(*compiled)

    def records(self, q: Select) -> list[dict[str, Any]]:
        """Execute a DSL query: its rows as dicts (used by :meth:`Select.records`)."""
        if q.limit_ is None or q.limit_ > _PLAIN_LIMIT:
            return self.run(q).to_dict("records")  # type: ignore[no-any-return]
        compiled = self._compile(q)
        if not isinstance(compiled, tuple):
            return compiled.to_dict("records")  # type: ignore[no-any-return]
        runner = self.app.projections
        with runner._lock:
            runner._mirror()
            return query_records(runner.connection, *compiled)

    def _compile(self, q: Select, *, count: bool = False
                 ) -> tuple[str, list[Any]] | pd.DataFrame:
        """The SQL and parameters to run ``q``, after bringing its table up to date and
        checking its columns; or the (empty) result when the table does not exist yet."""
        self._ensure(q.table)
        owner = self._owner(q.table)
        decl = owner[1] if owner is not None else None
        # a Python projection creates its table with its first row: none yet, no rows
        if (decl is not None and not isinstance(decl, SqlProjection)
                and not self._exists(q.table)):
            import pandas as pd

            if count:
                return pd.DataFrame({"n": [0]})
            cols = list(q.columns) or list(dict.fromkeys(
                [decl.__key__, *(decl.__columns__ or {})]))  # type: ignore[union-attr]
            return pd.DataFrame(columns=cols)
        known = self._columns(q.table)
        unknown = sorted(q.referenced_columns() - set(known))
        if unknown:
            raise QueryError(f"table {q.table!r} has no column(s) {unknown}; its columns are "
                             f"{known}")
        sql, params = q.compile(count=count)
        rel = self.app.projections._events_rel
        if q.table == "events" and rel != "main.events":  # the log's mirror (non-DuckDB store)
            sql = f"WITH events AS (SELECT * FROM {rel}) {sql}"
        return sql, params

    def _exists(self, table: str) -> bool:
        return self.app.projections._known_columns(table) is not None

    def _columns(self, table: str) -> list[str]:
        runner = self.app.projections
        if table == "events":
            runner.sql("SELECT 1 LIMIT 0")  # mirror the log for non-DuckDB stores
            rel = runner.events_relation.split(".")[-1]
        else:
            known = runner._known_columns(table)  # cached by the runner
            if known is not None:
                return sorted(known)
            rel = table
        with runner._lock:
            rows = runner.connection.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
                "ORDER BY column_index", [rel]).fetchall()
        if not rows:
            tables = self._all_tables()
            raise QueryError(f"no table {table!r}; projection tables are {tables} (and events)")
        return [r[0] for r in rows]

    def __repr__(self) -> str:
        return f"<ReadSide position={self.position} consistent={self.consistent}>"


class QueryBus:
    """Routes queries by name to their handlers (``app.queries``)."""

    def __init__(self, app: App) -> None:
        self.app = app

    def read_side(self, *, consistent: bool = True, position: int | None = None,
                  timeout: float = 5.0) -> ReadSide:
        pos = self.app.last_position if position is None else position
        return ReadSide(self.app, position=pos, consistent=consistent, timeout=timeout)

    def ask(self, query: Query | str, payload: Mapping[str, Any] | None = None, *,
            consistent: bool = True, position: int | None = None,
            timeout: float = 5.0) -> Any:
        """Validate a query, then run its handler over a consistent read side.

        Raises
        ------
        UnknownNameError
            The query (or its handler) is not declared; the message lists the known ones.
        ValidationError
            The payload is invalid (every failure listed).
        ConsistencyTimeoutError
            A background projection did not reach the position in time.
        """
        model = self.app.model
        if isinstance(query, str):
            cls = model.queries.get(query)
            if cls is None:
                raise UnknownNameError("query", query, model.queries)
            obj = validate_message(cls, payload or {})
        else:
            obj = query
        name = obj.__message_type__
        handler = model.query_handlers.get(name)
        if handler is None:
            raise UnknownNameError("query handler", name, model.query_handlers)
        reads = self.read_side(consistent=consistent, position=position, timeout=timeout)
        return handler(obj, reads)

    def __repr__(self) -> str:
        return f"QueryBus(queries={list(self.app.model.queries)})"
