"""allframe-lab: a Jupyter-first workbench for event sourcing and CQRS.

Define events, commands, aggregates and projections on a :class:`Model` in notebook cells,
run commands through an :class:`App` against an event store (DuckDB by default), and replay
and time-travel the log into DuckDB-backed projections.

``import allframe_lab`` is cheap: duckdb, pyarrow and pandas are imported when first used.
"""

from typing import TYPE_CHECKING, Any

from allframe_lab.errors import (
    AggregateNotFoundError,
    AllframeError,
    ConcurrencyError,
    DomainError,
    ImportFormatError,
    ModelDefinitionError,
    RedefinitionWarning,
    StoreLockedError,
    UnknownEventTypeError,
    ValidationError,
)
from allframe_lab.model import (
    Aggregate,
    Command,
    Event,
    GenericEvent,
    Model,
    Projection,
    Query,
    Saga,
    SqlProjection,
    added_in,
    applies,
    handles,
    reacts,
    renamed_from,
    starts,
    step,
    upcasts,
)
from allframe_lab.runtime import App, ManualClock, SequentialIds, SystemClock
from allframe_lab.store import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AsOf,
    InMemoryEventStore,
    NewEvent,
    RecordedEvent,
)

if TYPE_CHECKING:  # pragma: no cover
    from allframe_lab.store.duckdb import DuckDBEventStore

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "Aggregate",
    "AggregateNotFoundError",
    "AllframeError",
    "App",
    "AsOf",
    "Command",
    "ConcurrencyError",
    "DomainError",
    "DuckDBEventStore",
    "Event",
    "GenericEvent",
    "ImportFormatError",
    "InMemoryEventStore",
    "ManualClock",
    "Model",
    "ModelDefinitionError",
    "NewEvent",
    "Projection",
    "Query",
    "RecordedEvent",
    "RedefinitionWarning",
    "Saga",
    "SequentialIds",
    "SqlProjection",
    "StoreLockedError",
    "SystemClock",
    "UnknownEventTypeError",
    "ValidationError",
    "__version__",
    "added_in",
    "applies",
    "handles",
    "reacts",
    "renamed_from",
    "starts",
    "step",
    "upcasts",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext allframe_lab``: rich reprs and magics (see :mod:`allframe_lab.notebook`)."""
    from allframe_lab.notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext allframe_lab``: remove the formatters ``%load_ext`` registered."""
    from allframe_lab.notebook.magics import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    if name == "DuckDBEventStore":
        from allframe_lab.store.duckdb import DuckDBEventStore

        return DuckDBEventStore
    raise AttributeError(f"module 'allframe_lab' has no attribute {name!r}")
