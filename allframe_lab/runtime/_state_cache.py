"""Cached intermediate states of a Python projection, for fast time travel (``as_of``).

A state is a dict ``key -> row`` (rows are dicts) at a log position. Two tiers:

- **marks**, taken every ``interval`` events while folding. A mark is *copy-on-write*: it
  copies only the rows that may have changed since the previous cached state (the keys the
  projection's :class:`~allframe_lab.model.RowSet` recorded as touched, a superset of the
  changed ones) and shares the other row dicts with that state. Cached rows are never
  mutated (folds start from copies), so sharing them is safe.
- **recent** positions callers asked for, in a small LRU, so repeated jumps are instant.

Cached rows that are plain dicts are stored *packed* (:class:`Packed`: a tuple of the column
names and the values, about half the memory of a dict copy), so the same byte budget holds
about twice as many marks. Readers unpack them (:func:`unpack_rows`); a fold unpacks only the
rows it touches.

Marks are thinned (every other one dropped, keeping the spread) when there are more than
``max_marks`` of them; while their estimated size passes ``max_bytes``, the mark whose
neighbours are closest is dropped. The estimate counts, for each mark, its key -> row
mapping and the rows it copied; rows a dropped mark copied and later marks share are not
counted again, so it can underestimate after drops.
"""

from __future__ import annotations

import bisect
import copy
from itertools import islice
from typing import Any

from allframe_lab.model import RowSet

Rows = dict[Any, dict[str, Any]]

#: Estimated bytes per entry of a mark's key -> row mapping, and per copied row (a 5-column
#: row and its changed numbers, measured on CPython 3.11: a dict copy takes ~230 bytes, a
#: packed row ~125). Only used for the budget.
_ENTRY_BYTES = 40
_ROW_BYTES = 250
_PACKED_BYTES = 130
_MISSING = object()


class Packed(tuple):  # type: ignore[type-arg]
    """A cached row dict, packed: ``(column names, *values)``.

    Immutable, so any number of cached states can share it. The names tuple is shared by
    every row with the same columns (see :meth:`StateCache.pack`).
    """

    __slots__ = ()

    def unpack(self) -> dict[str, Any]:
        return dict(zip(self[0], self[1:], strict=True))


def copy_row(row: Any) -> dict[str, Any]:
    """A row a fold may mutate: a packed row unpacked, else a shallow copy (``copy.copy``
    for dict subclasses, to keep their type)."""
    t = type(row)
    if t is Packed:
        return row.unpack()  # type: ignore[no-any-return]
    return row.copy() if t is dict else copy.copy(row)  # type: ignore[no-any-return]


def unpack_rows(rows: Rows) -> Rows:
    """A cached state with every packed row unpacked (the other rows are shared)."""
    return {k: v.unpack() if type(v) is Packed else v for k, v in rows.items()}


class CopyOnWriteRows(RowSet):
    """The rows of a fold that starts from a cached state: each row dict is copied the first
    time a handler reaches it (every way to reach a row goes through ``__getitem__`` or
    ``get``), so the cached state stays untouched and a short fold copies only the rows it
    touches instead of all of them."""

    __slots__ = ("_own",)

    def __init__(self, rows: Rows) -> None:
        super().__init__(dict(rows))  # a new mapping over the shared row dicts
        self._own: set[Any] = set()

    def __getitem__(self, key: Any) -> dict[str, Any]:
        row = self._rows[key]
        if key not in self._own:
            row = self._rows[key] = copy_row(row)
            self._own.add(key)
        self._touched.add(key)
        return row

    def get(self, key: Any, default: Any = None) -> Any:
        if self._rows.get(key) is None:
            return default
        return self[key]

    def __setitem__(self, key: Any, row: dict[str, Any]) -> None:
        self._rows[key] = row
        self._own.add(key)
        self._touched.add(key)

    def __delitem__(self, key: Any) -> None:
        del self._rows[key]
        self._own.discard(key)
        self._touched.add(key)

    def snapshot(self) -> Rows:
        return {k: copy_row(v) for k, v in self._rows.items()}


class StateCache:
    """Copies of a Python projection's rows at positions (see the module docstring)."""

    def __init__(self, decl: type, max_marks: int = 512, max_recent: int = 32,
                 max_bytes: int = 160 * 2**20) -> None:
        self.decl = decl
        self.positions: list[int] = []
        self.states: dict[int, Rows] = {}
        self.marks: set[int] = set()
        self.recent: dict[int, None] = {}  # insertion order = least recently used first
        self.max_marks = max_marks
        self.max_recent = max_recent
        self.max_bytes = max_bytes
        self.sizes: dict[int, int] = {}  # estimated bytes each mark added
        self.dropped = False  # whether the byte budget dropped a mark
        self.rows_copied = 0  # row dicts copied into marks (for tests and reports)
        self._names: dict[tuple[str, ...], tuple[str, ...]] = {}  # shared names of packed rows
        self._unpacked: tuple[int, Rows] | None = None  # the last state() asked for
        #: [keys, order] of the last frame built from a state (see projections._state_frame)
        self.sort_memo: list[Any] = [None, None]

    def __repr__(self) -> str:
        return (f"<StateCache {len(self.marks)} marks, {len(self.recent)} recent, "
                f"~{self.mark_bytes / 2**20:.0f} MB in marks>")

    @property
    def mark_bytes(self) -> int:
        """Estimated memory held by the marks (mappings plus the rows they copied)."""
        return sum(self.sizes.values())

    def pack(self, row: Any) -> Any:
        """A cacheable copy of a live row: packed if it is a plain dict, else a copy."""
        t = type(row)
        if t is Packed:  # already immutable
            return row
        if t is not dict:
            return copy.copy(row)
        names = tuple(row)
        return Packed((self._names.setdefault(names, names), *row.values()))

    def state(self, position: int) -> Rows:
        """The cached state at ``position`` with plain dict rows (the last one is kept, so
        asking for the same mark again costs nothing). Raises ``KeyError`` if not cached."""
        hit = self._unpacked
        if hit is not None and hit[0] == position:
            return hit[1]
        rows = unpack_rows(self.states[position])
        self._unpacked = (position, rows)
        return rows

    def wants_mark(self, position: int) -> bool:
        """Whether a mark at ``position`` would be kept: ``False`` once the byte budget
        dropped marks and the gap it would split is no wider than the narrowest one (the
        budget would drop it, or a neighbour, right away: a fold need not copy it)."""
        if position in self.states or not self.dropped or len(self.marks) < 3:
            return True
        ps = sorted(self.marks)
        i = bisect.bisect_left(ps, position)
        if i == 0 or i == len(ps):
            return True
        narrowest = min(ps[j + 1] - ps[j - 1] for j in range(1, len(ps) - 1))
        return ps[i] - ps[i - 1] > narrowest

    def nearest(self, position: int) -> tuple[int, Rows | None]:
        i = bisect.bisect_right(self.positions, position)
        if not i:
            return 0, None
        p = self.positions[i - 1]
        if p in self.recent:  # touch
            self.recent.pop(p)
            self.recent[p] = None
        return p, self.states[p]

    def put(self, position: int, rows: Rows) -> None:
        """Cache ``rows`` (which the caller no longer mutates) as a recent position."""
        if position in self.states:
            return
        if len(self.recent) >= self.max_recent:
            self._drop(next(iter(self.recent)))
        self.recent[position] = None
        self._insert(position, rows)

    def put_mark(self, position: int, rows: Rows, changed: set[Any] | None,
                 since: int | None) -> None:
        """Cache the live ``rows`` at ``position`` as a mark.

        ``changed`` holds every key whose row may differ from the cached state at ``since``;
        the other rows are shared with that state. Without it (or once that state was
        dropped) all rows are copied.
        """
        if position in self.states:
            if position not in self.marks:  # a recent position becomes a mark
                self.recent.pop(position, None)
                self.marks.add(position)
                self.sizes[position] = (_ENTRY_BYTES + _ROW_BYTES) * len(self.states[position])
            return
        base = self.states.get(since) if since is not None and changed is not None else None
        state = None
        if base is not None:
            assert changed is not None
            state = base.copy()
            pack = self.pack
            added = []
            for k in changed:
                row = rows.get(k, _MISSING)
                if row is _MISSING:
                    state.pop(k, None)
                elif k in state:
                    state[k] = pack(row)
                else:
                    added.append(k)
            if added:  # new rows: in the live order (usually the last ones), not the set's
                last = list(islice(reversed(rows), len(added)))[::-1]
                for k in (last if set(last) == set(added) else added):
                    state[k] = pack(rows[k])
            copied = len(changed)
            if len(state) != len(rows):  # rows changed without being touched: do not guess
                state = None
            elif list(state) != list(rows):  # keep the live key order (a frame's row order)
                state = {k: state[k] for k in rows}
        if state is None:
            state = {k: self.pack(v) for k, v in rows.items()}
            copied = len(state)
        self.rows_copied += copied
        if len(self.marks) >= self.max_marks:
            self._thin()
        self.marks.add(position)
        self.sizes[position] = _ENTRY_BYTES * len(state) + _PACKED_BYTES * copied
        self._insert(position, state)
        while self.mark_bytes > self.max_bytes and len(self.marks) > 2:
            self._drop(self._densest())
            self.dropped = True

    def _densest(self) -> int:
        """The inner mark whose neighbours are closest together (dropping it leaves the
        smallest gap); the first and last marks stay."""
        ps = sorted(self.marks)
        i = min(range(1, len(ps) - 1), key=lambda j: ps[j + 1] - ps[j - 1])
        return ps[i]

    def _thin(self) -> None:
        """Drop every other mark: the spread stays even, the density halves."""
        for p in sorted(self.marks)[1::2]:
            self._drop(p)

    def _insert(self, position: int, rows: Rows) -> None:
        bisect.insort(self.positions, position)
        self.states[position] = rows

    def _drop(self, position: int) -> None:
        if self._unpacked is not None and self._unpacked[0] == position:
            self._unpacked = None
        self.marks.discard(position)
        self.sizes.pop(position, None)
        self.recent.pop(position, None)
        self.states.pop(position, None)
        i = bisect.bisect_left(self.positions, position)
        if i < len(self.positions) and self.positions[i] == position:
            del self.positions[i]

    def clear(self) -> None:
        self._unpacked = None
        self.positions.clear()
        self.states.clear()
        self.marks.clear()
        self.recent.clear()
        self.sizes.clear()
