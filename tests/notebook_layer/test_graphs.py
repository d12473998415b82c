"""The event-flow graph: nodes and edges from the model's introspection."""

from __future__ import annotations

from types import SimpleNamespace

from allframe_lab import Model
from allframe_lab.notebook.graphs import event_flow, event_flow_dot, event_flow_edges
from allframe_lab.notebook.mime import _dot_edges, validate
from tests.bank import make_bank


def test_bank_event_flow() -> None:
    bank = make_bank()
    nodes, edges = event_flow_edges(bank)
    kinds = {nid: kind for nid, kind, _ in nodes}
    assert kinds == {
        **{f"event/{e}": "event" for e in bank.events},
        **{f"command/{c}": "command" for c in bank.commands},
        "aggregate/Account": "aggregate",
        "projection/balances": "projection", "projection/totals": "projection"}
    expected = {(f"command/{c}", "aggregate/Account") for c in bank.commands}
    expected |= {("aggregate/Account", f"event/{e}") for e in bank.events}
    expected |= {(f"event/{e}", "projection/balances")
                 for e in bank.projections["balances"].__appliers__}
    # the SQL projection "totals" names these two types in string literals
    expected |= {("event/FundsDeposited", "projection/totals"),
                 ("event/FundsWithdrawn", "projection/totals")}
    assert set(edges) == expected
    # the DOT source holds the same edges, and the bundle validates
    assert set(_dot_edges(event_flow_dot(bank))) == expected
    bundle = event_flow(bank)
    validate(bundle.payload)
    assert {n["id"] for n in bundle.payload["nodes"]} == set(kinds)


def test_sql_projection_edges_and_wildcards() -> None:
    m = Model("m")
    from allframe_lab import Aggregate, Event, applies

    @m.event("Placed")
    class Placed(Event):
        total: int

    @m.event("Paid")
    class Paid(Event):
        pass

    @m.aggregate("Order")
    class Order(Aggregate):
        n: int = 0

        @applies("*")
        def _any(self, e):
            self.n += 1

    m.sql_projection("paid", "SELECT stream_id FROM events WHERE type = 'Paid'")
    m.sql_projection("all_types", "SELECT type, count(*) AS n FROM events GROUP BY type")
    _, edges = event_flow_edges(m)
    assert ("event/Paid", "projection/paid") in edges
    assert ("event/Placed", "projection/paid") not in edges
    assert ("event/*", "projection/all_types") in edges
    assert ("aggregate/Order", "event/*") in edges


def test_sagas_join_the_flow_and_the_model_table() -> None:
    from allframe_lab import Command, Event
    from allframe_lab.model.saga import Saga, starts, step
    from allframe_lab.notebook.reprs import model_rows

    m = Model("shop")

    @m.event("OrderPlaced")
    class OrderPlaced(Event):
        order_id: str

    @m.event("StockReserved")
    class StockReserved(Event):
        order_id: str

    @m.command("ReserveStock")
    class ReserveStock(Command):
        order_id: str

    @m.saga("Checkout", correlation="order_id")
    class Checkout(Saga):
        order_id: str = ""

        @starts("OrderPlaced")
        def begin(self, e):
            self.order_id = e.order_id

        @step(wait_for="StockReserved")
        def reserve(self):
            return ReserveStock(order_id=self.order_id)

    nodes, edges = event_flow_edges(m)
    assert ("saga/Checkout", "saga", "Checkout") in nodes
    assert ("event/OrderPlaced", "saga/Checkout") in edges
    assert ("event/StockReserved", "saga/Checkout") in edges
    (row,) = [r for r in model_rows(m) if r[0] == "saga"]
    assert row[1] == "Checkout" and "starts: OrderPlaced" in row[2]
    assert "reserve (waits for: StockReserved)" in row[2]


def test_model_info_without_sagas_is_fine() -> None:
    """Older ``ModelInfo`` objects have no ``sagas`` attribute."""
    bank = make_bank()
    info = bank.info()
    fake = SimpleNamespace(name="bank", info=lambda: SimpleNamespace(
        events=info.events, commands=info.commands, aggregates=info.aggregates,
        projections=info.projections))
    _, edges = event_flow_edges(fake)
    assert set(edges) == set(event_flow_edges(bank)[1])
