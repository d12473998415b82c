"""Projection declarations: Python projections (handlers fold events into keyed rows) and
SQL projections (a SELECT over the ``events`` table).

Both are pure declarations; the runtime's projection runner materializes them as DuckDB tables
with a checkpoint and answers ``as_of`` queries.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

from allframe_lab.model._handlers import HandlerRef
from allframe_lab.model.aggregate import apply_fns

__all__ = ["Projection", "RowSet", "SqlProjection"]


class RowSet(MutableMapping[Any, dict[str, Any]]):
    """The rows of a Python projection, keyed by the projection's key column.

    Every row that is read or written is remembered as *touched*, so the runner writes only
    those rows back to DuckDB, in batches. Rows are plain dicts: mutate them in place.
    """

    __slots__ = ("_rows", "_touched")

    def __init__(self, rows: dict[Any, dict[str, Any]] | None = None) -> None:
        self._rows: dict[Any, dict[str, Any]] = rows if rows is not None else {}
        self._touched: set[Any] = set()

    def __getitem__(self, key: Any) -> dict[str, Any]:
        row = self._rows[key]
        self._touched.add(key)
        return row

    def get(self, key: Any, default: Any = None) -> Any:
        row = self._rows.get(key)
        if row is None:
            return default
        self._touched.add(key)
        return row

    def __setitem__(self, key: Any, row: dict[str, Any]) -> None:
        self._rows[key] = row
        self._touched.add(key)

    def __delitem__(self, key: Any) -> None:
        del self._rows[key]
        self._touched.add(key)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def take_touched(self) -> set[Any]:
        """Return and forget the keys touched since the last call."""
        touched, self._touched = self._touched, set()
        return touched

    def snapshot(self) -> dict[Any, dict[str, Any]]:
        """A deep copy of the rows (the runner caches these for time travel)."""
        return {k: copy.copy(v) for k, v in self._rows.items()}

    def __repr__(self) -> str:
        return f"RowSet({len(self._rows)} rows)"


class Projection:
    """Base class of Python projections.

    Subclass it, mark handlers with :func:`~allframe_lab.applies`, and keep rows in
    ``self.rows`` keyed by the value of the ``key`` column. Handlers take
    ``(self, event)`` or ``(self, event, record)``.

    Examples
    --------
    >>> from allframe_lab import Model, Event, Projection, applies
    >>> m = Model("shop")
    >>> @m.event("ItemSold")
    ... class ItemSold(Event):
    ...     sku: str
    ...     qty: int
    >>> @m.projection("sales", key="sku")
    ... class Sales(Projection):
    ...     @applies("ItemSold")
    ...     def sold(self, e):
    ...         row = self.rows.setdefault(e.sku, {"sku": e.sku, "qty": 0})
    ...         row["qty"] += e.qty
    >>> p = Sales()
    >>> p.handle(ItemSold(sku="a", qty=2)); p.handle(ItemSold(sku="a", qty=1))
    >>> p.rows["a"]
    {'sku': 'a', 'qty': 3}
    """

    __projection_name__: ClassVar[str] = ""
    __table__: ClassVar[str] = ""
    __key__: ClassVar[str] = "stream_id"
    __columns__: ClassVar[dict[str, str] | None] = None
    __appliers__: ClassVar[dict[str, HandlerRef]] = {}

    def __init__(self, rows: dict[Any, dict[str, Any]] | None = None) -> None:
        self.rows = RowSet(rows)

    def handle(self, event: Any, record: Any = None) -> None:
        """Fold one event into the rows. Events without a handler are skipped."""
        fns = apply_fns(type(self))
        found = fns.get(event.__message_type__) or fns.get("*")
        if found is None:
            return
        fn, wants_record = found
        if wants_record:
            fn(self, event, record)
        else:
            fn(self, event)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} projection {self.__projection_name__!r}: {self.rows!r}>"


@dataclass(frozen=True, slots=True)
class SqlProjection:
    """A projection defined as one SELECT over the ``events`` table.

    Attributes
    ----------
    name : str
        The projection's name.
    sql : str
        A SELECT statement; it reads the table ``events`` (columns ``position``, ``stream_id``,
        ``version``, ``event_id``, ``type``, ``schema_version``, ``data`` (JSON), ``metadata``
        (JSON), ``occurred_at``, ``recorded_at``). As-of queries replace ``events`` by its
        prefix ``position <= p``.
    table : str
        The DuckDB table it materializes into.
    description : str
    """

    name: str
    sql: str
    table: str
    description: str = ""
