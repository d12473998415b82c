"""Fixtures of the notebook-layer tests: a bank App with a few events, a real IPython shell,
and (slow) the BPIC 2012 log imported into a DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from allframe_lab import App, ManualClock, SequentialIds
from allframe_lab.store import InMemoryEventStore, NewEvent
from tests.bank import make_bank

T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def bank_app() -> Iterator[App]:
    """The shared bank model on an in-memory store: accounts a1 (3 events) and b2 (2)."""
    bank = make_bank()
    app = App(bank, InMemoryEventStore(), clock=ManualClock(T0, tick=timedelta(hours=1)),
              ids=SequentialIds())
    cmd = bank.commands
    app.handle(cmd["OpenAccount"](account_id="a1", owner="ann"))
    app.handle(cmd["Deposit"](account_id="a1", amount=50))
    app.handle(cmd["OpenAccount"](account_id="b2", owner="bob"))
    app.handle(cmd["Withdraw"](account_id="a1", amount=20))
    app.handle(cmd["Deposit"](account_id="b2", amount=7))
    yield app
    app.close()


def timed_store() -> InMemoryEventStore:
    """Three order streams with known times and types (for filter tests)."""
    store = InMemoryEventStore()
    day = timedelta(days=1)
    store.append("order-1", [NewEvent("Placed", {"total": 3}, occurred_at=T0),
                             NewEvent("Paid", {"total": 3}, occurred_at=T0 + day)])
    store.append("order-2", [NewEvent("Placed", {"total": 5}, occurred_at=T0 + 2 * day),
                             NewEvent("Cancelled", {}, occurred_at=T0 + 3 * day)])
    store.append("invoice-9", [NewEvent("Placed", {"total": 9}, occurred_at=T0 + 10 * day),
                               NewEvent("Paid", {"total": 9}, occurred_at=T0 + 11 * day)])
    return store


@pytest.fixture
def shell() -> Iterator[Any]:
    """A real IPython InteractiveShell (the singleton, cleared afterwards)."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    yield ip
    if "allframe_lab" in ip.extension_manager.loaded:
        ip.run_line_magic("unload_ext", "allframe_lab")
    InteractiveShell.clear_instance()


@pytest.fixture(scope="session")
def bpic_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped BPIC 2012 log imported into a DuckDB file (about 3-5 s, once)."""
    from allframe_lab.io import dataset_path, import_log
    from allframe_lab.store.duckdb import DuckDBEventStore

    path = tmp_path_factory.mktemp("bpic") / "bpic2012.duckdb"
    with DuckDBEventStore(path) as store:
        import_log(dataset_path("bpic2012"), store, progress=False)
    return path


@pytest.fixture
def bpic_app(bpic_path: Path) -> Iterator[App]:
    from allframe_lab.io import process_log_model
    from allframe_lab.store.duckdb import DuckDBEventStore

    app = App(process_log_model(), DuckDBEventStore(bpic_path, read_only=True))
    yield app
    app.close()
