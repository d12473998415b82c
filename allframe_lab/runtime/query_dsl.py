"""A small query DSL (filter, sort, limit, offset) that compiles to parameterized DuckDB SQL.

Values never enter the SQL text: every value becomes a ``?`` parameter, and every identifier
is checked and quoted. Column names are checked against the table when the query runs.

Examples
--------
>>> q = (select("balances")
...      .where(col("balance") >= 100, owner="ann")
...      .order_by(desc("balance"), "account_id")
...      .limit(10).offset(20))
>>> sql, params = q.compile()
>>> for part in sql.split(" ORDER BY "):
...     print(part)
SELECT * FROM "balances" WHERE ("balance" >= ?) AND ("owner" = ?)
"balance" DESC, "account_id" ASC LIMIT ? OFFSET ?
>>> params
[100, 'ann', 10, 20]
>>> select("t").where((col("a") < 1) | col("b").isin([1, 2])).compile()
('SELECT * FROM "t" WHERE (("a" < ?) OR ("b" IN (?, ?)))', [1, 1, 2])
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from allframe_lab.errors import QueryError

__all__ = ["Column", "Condition", "Select", "asc", "col", "desc", "select"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _quote(name: str) -> str:
    if not isinstance(name, str) or not _IDENT.fullmatch(name):
        raise QueryError(f"{name!r} is not a valid column or table name (letters, digits, _)")
    return f'"{name}"'


@dataclass(frozen=True)
class Condition:
    """A boolean SQL expression with its parameters; combine with ``&``, ``|`` and ``~``."""

    sql: str
    params: tuple[Any, ...]
    columns: frozenset[str]

    def __and__(self, other: Condition) -> Condition:
        return Condition(f"({self.sql} AND {other.sql})", self.params + other.params,
                         self.columns | other.columns)

    def __or__(self, other: Condition) -> Condition:
        return Condition(f"({self.sql} OR {other.sql})", self.params + other.params,
                         self.columns | other.columns)

    def __invert__(self) -> Condition:
        return Condition(f"(NOT {self.sql})", self.params, self.columns)

    def __bool__(self) -> bool:
        raise QueryError("combine conditions with & and | (not `and`/`or`), and wrap each "
                         "comparison in parentheses")


class Column:
    """A column reference: comparisons build :class:`Condition` objects."""

    def __init__(self, name: str) -> None:
        _quote(name)
        self.name = name

    def _op(self, op: str, value: Any) -> Condition:
        return Condition(f"({_quote(self.name)} {op} ?)", (value,), frozenset({self.name}))

    def __eq__(self, value: Any) -> Condition:  # type: ignore[override]
        if value is None:
            return self.is_null()
        return self._op("=", value)

    def __ne__(self, value: Any) -> Condition:  # type: ignore[override]
        if value is None:
            return ~self.is_null()
        return self._op("<>", value)

    def __lt__(self, value: Any) -> Condition:
        return self._op("<", value)

    def __le__(self, value: Any) -> Condition:
        return self._op("<=", value)

    def __gt__(self, value: Any) -> Condition:
        return self._op(">", value)

    def __ge__(self, value: Any) -> Condition:
        return self._op(">=", value)

    __hash__ = None  # type: ignore[assignment]

    def isin(self, values: Iterable[Any]) -> Condition:
        """``column IN (values...)`` (an empty list matches nothing)."""
        vals = tuple(values)
        if not vals:
            return Condition("(FALSE)", (), frozenset({self.name}))
        marks = ", ".join("?" * len(vals))
        return Condition(f"({_quote(self.name)} IN ({marks}))", vals, frozenset({self.name}))

    def between(self, low: Any, high: Any) -> Condition:
        """``low <= column <= high``."""
        return Condition(f"({_quote(self.name)} BETWEEN ? AND ?)", (low, high),
                         frozenset({self.name}))

    def like(self, pattern: str) -> Condition:
        """SQL ``LIKE`` (``%`` any run, ``_`` one character); the pattern is a parameter."""
        return self._op("LIKE", pattern)

    def is_null(self) -> Condition:
        return Condition(f"({_quote(self.name)} IS NULL)", (), frozenset({self.name}))

    def __repr__(self) -> str:
        return f"col({self.name!r})"


@dataclass(frozen=True)
class _Order:
    name: str
    descending: bool = False


def col(name: str) -> Column:
    """A column, for conditions: ``col("balance") >= 100``."""
    return Column(name)


def asc(name: str) -> _Order:
    """Sort ascending by a column."""
    _quote(name)
    return _Order(name)


def desc(name: str) -> _Order:
    """Sort descending by a column."""
    _quote(name)
    return _Order(name, True)


@dataclass(frozen=True)
class Select:
    """An immutable query over one table: each method returns a new :class:`Select`."""

    table: str
    columns: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    order: tuple[_Order, ...] = ()
    limit_: int | None = None
    offset_: int | None = None
    runner: Any = field(default=None, compare=False, repr=False)

    def select(self, *columns: str) -> Select:
        """Only these columns (default: all)."""
        for c in columns:
            _quote(c)
        return replace(self, columns=tuple(columns))

    def where(self, *conditions: Condition, **equals: Any) -> Select:
        """Keep rows matching every condition; ``name=value`` means ``col(name) == value``."""
        for c in conditions:
            if not isinstance(c, Condition):
                raise QueryError(f"where() takes conditions such as col('x') > 1, got {c!r}")
        extra = tuple(col(k) == v for k, v in equals.items())
        return replace(self, conditions=self.conditions + tuple(conditions) + extra)

    filter = where

    def order_by(self, *keys: str | _Order) -> Select:
        """Sort by columns: names (ascending), ``asc(name)``, ``desc(name)`` or ``"-name"``."""
        out = []
        for k in keys:
            if isinstance(k, _Order):
                out.append(k)
            elif isinstance(k, str) and k.startswith("-"):
                out.append(desc(k[1:]))
            else:
                out.append(asc(k))
        return replace(self, order=self.order + tuple(out))

    def limit(self, n: int) -> Select:
        if not isinstance(n, int) or n < 0:
            raise QueryError(f"limit must be a non-negative int, got {n!r}")
        return replace(self, limit_=n)

    def offset(self, n: int) -> Select:
        if not isinstance(n, int) or n < 0:
            raise QueryError(f"offset must be a non-negative int, got {n!r}")
        return replace(self, offset_=n)

    def referenced_columns(self) -> set[str]:
        """Every column the query names (checked against the table before it runs)."""
        names = set(self.columns) | {o.name for o in self.order}
        for c in self.conditions:
            names |= c.columns
        return names

    def compile(self, *, count: bool = False) -> tuple[str, list[Any]]:
        """The SQL text and its parameters (``count=True``: ``SELECT count(*)``, no paging)."""
        what = "count(*) AS n" if count else (
            ", ".join(_quote(c) for c in self.columns) or "*")
        sql = f"SELECT {what} FROM {_quote(self.table)}"
        params: list[Any] = []
        if self.conditions:
            sql += " WHERE " + " AND ".join(c.sql for c in self.conditions)
            for c in self.conditions:
                params.extend(c.params)
        if count:
            return sql, params
        if self.order:
            sql += " ORDER BY " + ", ".join(
                f"{_quote(o.name)} {'DESC' if o.descending else 'ASC'}" for o in self.order)
        if self.limit_ is not None:
            sql += " LIMIT ?"
            params.append(self.limit_)
        if self.offset_ is not None:
            sql += " OFFSET ?"
            params.append(self.offset_)
        return sql, params

    # -------------------------------------------------------------- running (when bound)
    def df(self) -> Any:
        """Run the query: a pandas DataFrame."""
        return self._bound().run(self)

    def records(self) -> list[dict[str, Any]]:
        """Run the query: a list of dicts (as ``df().to_dict("records")`` gives them)."""
        runner = self._bound()
        fast = getattr(runner, "records", None)  # a runner may only know run()
        return fast(self) if fast is not None else runner.run(self).to_dict("records")

    def first(self) -> dict[str, Any] | None:
        """The first row as a dict, or None."""
        rows = self.limit(1).records()
        return rows[0] if rows else None

    def one(self) -> dict[str, Any]:
        """Exactly one row, as a dict.

        Raises
        ------
        QueryError
            If there are no rows or more than one.
        """
        rows = self.limit(2).records()
        if len(rows) != 1:
            raise QueryError(f"expected exactly one row from {self.table!r}, got {len(rows)}")
        return rows[0]

    def count(self) -> int:
        """The number of matching rows (ignores limit/offset)."""
        return int(self._bound().run(self, count=True).n.iloc[0])

    def _bound(self) -> Any:
        if self.runner is None:
            raise QueryError("this query is not bound to a store: use app.read().table(...)")
        return self.runner

    def __repr__(self) -> str:
        sql, params = self.compile()
        return f"<Select {sql} params={params}>"


def select(table: str, columns: Sequence[str] = ()) -> Select:
    """Start a query over a table (a projection's table, or ``events``)."""
    _quote(table)
    return Select(table).select(*columns) if columns else Select(table)
