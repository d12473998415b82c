"""Id factories: where the App gets event and command ids from."""

from __future__ import annotations

import abc
import itertools
import threading
import uuid

__all__ = ["IdFactory", "RandomIds", "SequentialIds"]


class IdFactory(abc.ABC):
    """Port: new unique ids."""

    @abc.abstractmethod
    def new_id(self) -> uuid.UUID:
        """A new id."""


class RandomIds(IdFactory):
    """Random UUID4s."""

    def new_id(self) -> uuid.UUID:
        return uuid.uuid4()

    def __repr__(self) -> str:
        return "RandomIds()"


class SequentialIds(IdFactory):
    """Deterministic ids: UUIDs derived from a seed and a counter (for re-runnable notebooks).

    Examples
    --------
    >>> ids = SequentialIds(seed=7)
    >>> a, b = ids.new_id(), ids.new_id()
    >>> a != b and SequentialIds(seed=7).new_id() == a
    True
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def new_id(self) -> uuid.UUID:
        with self._lock:
            n = next(self._counter)
        # version-4 layout, deterministic bits: seed in the high 64, counter in the low 64
        value = ((self.seed & 0xFFFF_FFFF_FFFF) << 80) | n
        return uuid.UUID(int=value, version=4)

    def __repr__(self) -> str:
        return f"SequentialIds(seed={self.seed})"
