"""Clocks: where the App gets domain time (``occurred_at``) from.

Pass a :class:`ManualClock` to make a notebook re-run produce the same events, and to let
tests move time without sleeping.
"""

from __future__ import annotations

import abc
import functools
import threading
from datetime import UTC, datetime, timedelta

__all__ = ["Clock", "ManualClock", "SystemClock"]

_UTC = UTC


class Clock(abc.ABC):
    """Port: the current time, timezone-aware (UTC)."""

    @abc.abstractmethod
    def now(self) -> datetime:
        """The current time (for new events: a ticking clock moves on)."""

    def peek(self) -> datetime:
        """The current time without moving a ticking clock (deadline checks, stamps of
        snapshots and saga history), so such reads never change the events' times."""
        return self.now()


class SystemClock(Clock):
    """The machine's clock, in UTC.

    Examples
    --------
    >>> SystemClock().now().tzinfo
    datetime.timezone.utc
    """

    # ``datetime.now(UTC)`` itself, not a method that calls it: App.handle reads the clock
    # once per command, and a Python frame costs more than the reading. A partial is not a
    # descriptor, so ``clock.now()`` calls it without ``self``.
    now = functools.partial(datetime.now, _UTC)  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock(Clock):
    """A clock that moves only when told to (or by ``tick`` on every reading).

    Parameters
    ----------
    start : datetime, default 2024-01-01T00:00:00Z
        The initial time (naive times are taken as UTC).
    tick : timedelta, default 0
        Added after every :meth:`now`, so consecutive events get distinct times.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> clock = ManualClock(datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> clock.advance(hours=24)
    >>> clock.now().isoformat()
    '2024-01-02T00:00:00+00:00'
    """

    def __init__(
        self,
        start: datetime | None = None,
        *,
        tick: timedelta = timedelta(0),
    ) -> None:
        start = start or datetime(2024, 1, 1, tzinfo=_UTC)
        self._now = start if start.tzinfo else start.replace(tzinfo=_UTC)
        self._tick = tick
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            t = self._now
            self._now = t + self._tick
            return t

    def peek(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (naive times are taken as UTC)."""
        with self._lock:
            self._now = when if when.tzinfo else when.replace(tzinfo=_UTC)

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> None:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``."""
        with self._lock:
            self._now += delta if delta is not None else timedelta(**kwargs)

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"
