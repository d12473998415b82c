"""The Workbench: one notebook object that opens an App over a store and offers its views.

It is a view *around* runtime objects: it holds an :class:`~allframe_lab.App`, registers the
rich formatters of :mod:`allframe_lab.notebook.reprs` on the running IPython shell, and
returns displayable objects. The widgets it opens (time travel, command form, dashboard)
live in their own modules and are imported when first asked for.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from allframe_lab.notebook.mime import MimeBundle, timeline_bundle

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from allframe_lab.model import Aggregate, Model
    from allframe_lab.runtime import App
    from allframe_lab.runtime.projections import ProjectionHandle
    from allframe_lab.store import AsOf, EventStore

__all__ = ["StreamView", "Workbench"]

#: Events of a stream shown by :meth:`Workbench.stream` (the first ones).
STREAM_LIMIT = 2_000


class StreamView(MimeBundle):
    """One stream: a timeline MIME bundle (one lane) plus the events as a DataFrame.

    Attributes
    ----------
    stream_id : str
    records : list of RecordedEvent
    """

    def __init__(self, stream_id: str, records: list[Any], *, total: int) -> None:
        self.stream_id = stream_id
        self.records = records
        shown = "" if total <= len(records) else f": first {len(records)} of {total} events"
        super().__init__(timeline_bundle(records, title=f"stream {stream_id}{shown}",
                                         lanes=[stream_id]).data)

    def df(self) -> pd.DataFrame:
        """The events as a DataFrame (position, stream_id, version, type, occurred_at, ...)."""
        from allframe_lab.runtime.frames import events_frame

        return events_frame(self.records)

    def __len__(self) -> int:
        return len(self.records)


class Workbench:
    """Open an App over a store and show it: model, store, streams, aggregates, projections.

    Parameters
    ----------
    app_or_store_or_path : App, EventStore, str or os.PathLike
        An App; an event store (an App is made with ``model``); or a DuckDB file path (opened
        with ``read_only``; the Workbench closes it in :meth:`close`).
    model : Model, optional
        The model for a store or path. Default: an empty model that decodes every event as
        :class:`~allframe_lab.GenericEvent` (enough to browse any store).
    read_only : bool, default False
        For a path: open the DuckDB file read-only (works beside a process that writes).
    register : bool, default True
        Register the rich formatters on the running IPython shell (as ``%load_ext
        allframe_lab`` does). Outside IPython nothing is registered.

    Raises
    ------
    TypeError
        If the first argument is neither an App, an EventStore nor a path.

    Examples
    --------
    >>> from allframe_lab import Model
    >>> from allframe_lab.store import InMemoryEventStore, NewEvent
    >>> store = InMemoryEventStore()
    >>> _ = store.append("a1", [NewEvent("Opened", {"owner": "ann"}),
    ...                         NewEvent("Deposited", {"amount": 5})])
    >>> wb = Workbench(store)
    >>> wb
    Workbench(model='workbench', store=InMemoryEventStore(events=2, streams=1))
    >>> view = wb.stream("a1")
    >>> [e["type"] for e in view.payload["events"]]
    ['Opened', 'Deposited']
    >>> wb.streams_df()[["stream_id", "version"]].values.tolist()
    [['a1', 2]]
    """

    def __init__(self, app_or_store_or_path: App | EventStore | str | os.PathLike[str],
                 /, model: Model | None = None, *, read_only: bool = False,
                 register: bool = True) -> None:
        from allframe_lab.runtime import App
        from allframe_lab.store import EventStore

        self._owns_store = False
        subject = app_or_store_or_path
        if isinstance(subject, App):
            if model is not None and model is not subject.model:
                raise TypeError("an App already has its model: pass Workbench(app) alone, or "
                                "Workbench(store, model)")
            self.app = subject
        elif isinstance(subject, EventStore):
            self.app = App(model or _browse_model(), subject)
        elif isinstance(subject, str | os.PathLike):
            from allframe_lab.store.duckdb import DuckDBEventStore

            store = DuckDBEventStore(subject, read_only=read_only)
            self._owns_store = True
            self.app = App(model or _browse_model(), store)
        else:
            raise TypeError(
                "Workbench needs an App, an EventStore or a DuckDB file path, got "
                f"{type(subject).__name__}")
        if register:
            from allframe_lab.notebook.reprs import register_formatters

            register_formatters()

    # -------------------------------------------------------------- the pieces
    @property
    def model(self) -> Model:
        """The model (shown as a table of its elements)."""
        return self.app.model

    @property
    def store(self) -> EventStore:
        """The event store (shown as a summary: counts, time range, types, first streams)."""
        return self.app.store

    def model_table(self) -> pd.DataFrame:
        """The model's elements as a DataFrame: ``kind``, ``name``, ``details``."""
        import pandas as pd

        from allframe_lab.notebook.reprs import model_rows

        return pd.DataFrame(model_rows(self.model), columns=["kind", "name", "details"])

    def stream(self, stream_id: str, /, *, limit: int = STREAM_LIMIT) -> StreamView:
        """One stream as an event timeline (and ``.df()`` for the table).

        Parameters
        ----------
        stream_id : str
        limit : int, default 2000
            At most this many events (the first ones).
        """
        records = self.store.read_stream(stream_id, 1, limit)
        return StreamView(stream_id, records, total=self.store.stream_version(stream_id))

    def streams_df(self, *, prefix: str | None = None, limit: int | None = None
                   ) -> pd.DataFrame:
        """Streams with version, positions and time range (``App.streams``)."""
        return self.app.streams(prefix=prefix, limit=limit)

    def events(self, stream_id: str | None = None, /, *, limit: int | None = 1_000
               ) -> pd.DataFrame:
        """Events as a DataFrame (one stream's, or the log's first ``limit``)."""
        return self.app.events(stream_id, limit=limit)

    def aggregate(self, name: str, stream_id: str, /, *, version: int | None = None,
                  as_of: AsOf | datetime | None = None) -> Aggregate:
        """An aggregate's state, current or in the past (shown as a table of its fields).

        Same parameters as :meth:`App.load <allframe_lab.App.load>`.
        """
        return self.app.load(name, stream_id, version=version, as_of=as_of)

    def projection(self, name: str, /) -> ProjectionHandle:
        """A projection (shown as its table with its checkpoint; ``.df()`` for the frame)."""
        return self.app.projection(name)

    def sql(self, query: str, params: Any = None) -> pd.DataFrame:
        """Run a SELECT over ``events`` and the projection tables, on any store."""
        from allframe_lab.notebook._sql import frame

        return frame(self.app, query, params)

    def graph(self, *, rankdir: str = "LR") -> MimeBundle:
        """The model's event-flow graph: command -> aggregate -> event -> projection."""
        from allframe_lab.notebook.graphs import event_flow

        return event_flow(self.model, rankdir=rankdir)

    # -------------------------------------------------------------- widgets
    def streams(self, **filters: Any) -> Any:
        """The stream browser widget: filter by id, event type and time, pick to see lanes.

        Keyword arguments set its initial filters (``query``, ``event_type``,
        ``time_from``, ``time_to``, ``limit``); see
        :class:`~allframe_lab.notebook.stream_browser.StreamBrowser`.
        """
        from allframe_lab.notebook.stream_browser import StreamBrowser

        return StreamBrowser(self.app, **filters)

    def time_travel(self, projection: str | None = None, /, **options: Any) -> Any:
        """The time-travel widget over this App (``allframe_lab.notebook.time_travel``)."""
        from allframe_lab.notebook.time_travel import TimeTravel

        return TimeTravel(self.app, projection=projection, **options)

    def command_form(self, command: str, /, **options: Any) -> Any:
        """A form for a command, generated from its JSON Schema (``...notebook.command_form``)."""
        from allframe_lab.notebook.command_form import CommandForm

        return CommandForm(self.app, command, **options)

    def dashboard(self, **options: Any) -> Any:
        """The Panel dashboard of this App, inline (``allframe_lab.notebook.dashboard``)."""
        from allframe_lab.notebook.dashboard import dashboard

        return dashboard(self.app, **options)

    # -------------------------------------------------------------- display, lifecycle
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from allframe_lab.notebook.reprs import app_bundle

        bundle = app_bundle(self.app)
        bundle["text/plain"] = repr(self) + "\n" + bundle["text/plain"].split("\n", 1)[1]
        return bundle

    def close(self) -> None:
        """Close the store if the Workbench opened it (from a path)."""
        if self._owns_store:
            self.app.close()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workbench(model={self.model.name!r}, store={self.store!r})"


def _browse_model() -> Model:
    from allframe_lab.model import GenericEvent, Model

    return Model("workbench", fallback_event=GenericEvent)
