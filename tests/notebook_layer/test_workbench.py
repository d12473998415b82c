"""The Workbench facade: opening, views and hooks to the other widgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from allframe_lab import App
from allframe_lab.notebook.mime import validate
from allframe_lab.notebook.workbench import Workbench
from allframe_lab.store import InMemoryEventStore, NewEvent
from tests.bank import make_bank


def test_opens_a_duckdb_path_and_closes_it(tmp_path: Path) -> None:
    from allframe_lab.store.duckdb import DuckDBEventStore

    path = tmp_path / "w.duckdb"
    with DuckDBEventStore(path) as store:
        store.append("s1", [NewEvent("Anything", {"k": 1})])
    with Workbench(path, register=False) as wb:
        assert wb.model.fallback_event is not None  # unknown types decode generically
        assert wb.stream("s1").payload["events"][0]["data"] == {"k": 1}
        assert wb.sql("SELECT count(*) AS n FROM events").n[0] == 1
        assert wb.events().type.tolist() == ["Anything"]
    with DuckDBEventStore(path) as again:  # closed: the file is free for a writer
        assert again.head_position == 1


def test_views_over_the_bank(bank_app: App) -> None:
    wb = Workbench(bank_app, register=False)
    assert wb.app is bank_app and wb.model is bank_app.model and wb.store is bank_app.store
    table = wb.model_table()
    assert set(table.kind) == {"event", "command", "aggregate", "projection"}
    assert set(table.name) >= set(bank_app.model.events) | set(bank_app.model.commands)

    view = wb.stream("a1")
    validate(view.payload)
    assert len(view) == 3 and view.df().type.tolist() == [
        "AccountOpened", "FundsDeposited", "FundsWithdrawn"]
    assert wb.aggregate("Account", "a1").balance == 30
    assert wb.aggregate("Account", "a1", version=2).balance == 50
    assert wb.projection("balances").df().set_index("account_id").balance.to_dict() == {
        "a1": 30, "b2": 7}
    assert wb.sql("SELECT count(*) AS n FROM events").n[0] == 5  # in-memory store too
    assert "command/Withdraw -> aggregate/Account" in wb.graph().data["text/plain"]
    sb = wb.streams(query="b")
    assert [r["stream_id"] for r in sb.rows] == ["b2"]
    bundle = wb._repr_mimebundle_()
    assert bundle["text/plain"].startswith("Workbench(model='bank'")
    assert "<table" in bundle["text/html"]


def test_store_with_model_and_bad_inputs() -> None:
    store = InMemoryEventStore()
    wb = Workbench(store, make_bank(), register=False)
    assert wb.model.name == "bank"
    with pytest.raises(TypeError, match="Workbench needs an App, an EventStore"):
        Workbench(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="already has its model"):
        Workbench(App(make_bank(), store), make_bank())


def test_widget_hooks(bank_app: App) -> None:
    wb = Workbench(bank_app, register=False)
    tt = wb.time_travel("balances", position=2)
    assert tt.app is bank_app and tt.position == 2 and tt.projection == "balances"


def test_command_form_hook(bank_app: App) -> None:
    form = Workbench(bank_app, register=False).command_form("Deposit")
    assert type(form).__name__ == "CommandForm"
