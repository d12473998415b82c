"""The seed's event and integration tests (Phase 2) in Python form, on every backend.

Append, replay, serialization, aggregate from events, projection update and rebuild, and the
full flow: command -> event -> projection -> query.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated

import pytest
from pydantic import Field

from allframe_lab import (
    Aggregate,
    App,
    Command,
    DomainError,
    Event,
    ManualClock,
    Model,
    Projection,
    Query,
    SequentialIds,
    applies,
    handles,
)
from allframe_lab.model.constraints import Range
from allframe_lab.runtime.query_dsl import col
from allframe_lab.store import EventStore

T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
MAX_QTY = 99


class OutOfStock(DomainError):
    """More items asked for than are on the shelf."""


def make_shop() -> Model:
    shop = Model("shop")

    @shop.event("ProductListed")
    class ProductListed(Event):
        name: str
        price: Decimal
        tags: list[str]
        available_from: date
        attributes: dict[str, float | int | str | bool | None]

    @shop.event("StockAdded")
    class StockAdded(Event):
        qty: int

    @shop.event("ItemSold")
    class ItemSold(Event):
        qty: int
        sold_at: datetime

    @shop.command("ListProduct", stream="sku", creates=True)
    class ListProduct(Command):
        sku: str
        name: str
        price: Decimal
        tags: list[str] = Field(default_factory=list)
        available_from: date = date(2024, 1, 1)
        attributes: dict[str, float | int | str | bool | None] = Field(default_factory=dict)

    @shop.command("AddStock", stream="sku")
    class AddStock(Command):
        sku: str
        qty: Annotated[int, Range(gt=0, le=MAX_QTY)]

    @shop.command("Sell", stream="sku")
    class Sell(Command):
        sku: str
        qty: Annotated[int, Range(gt=0, le=MAX_QTY)]
        at: datetime

    @shop.aggregate("Product")
    class Product(Aggregate):
        name: str = ""
        stock: int = 0
        sold: int = 0

        @applies("ProductListed")
        def _listed(self, e: ProductListed) -> None:
            self.name = e.name

        @applies("StockAdded")
        def _added(self, e: StockAdded) -> None:
            self.stock += e.qty

        @applies("ItemSold")
        def _sold(self, e: ItemSold) -> None:
            self.stock -= e.qty
            self.sold += e.qty

        @handles("ListProduct")
        def list_(self, c: ListProduct) -> ProductListed:
            return ProductListed(name=c.name, price=c.price, tags=c.tags,
                                 available_from=c.available_from, attributes=c.attributes)

        @handles("AddStock")
        def add(self, c: AddStock) -> StockAdded:
            return StockAdded(qty=c.qty)

        @handles("Sell")
        def sell(self, c: Sell) -> ItemSold:
            if c.qty > self.stock:
                raise OutOfStock(f"only {self.stock} of {self.name!r} left, asked for {c.qty}")
            return ItemSold(qty=c.qty, sold_at=c.at)

    @shop.projection("stock", key="sku", columns={"sku": "VARCHAR", "name": "VARCHAR",
                                                  "on_hand": "BIGINT", "sold": "BIGINT"})
    class Stock(Projection):
        @applies("ProductListed")
        def listed(self, e: ProductListed, rec) -> None:
            self.rows[rec.stream_id] = {"sku": rec.stream_id, "name": e.name, "on_hand": 0,
                                        "sold": 0}

        @applies("StockAdded")
        def added(self, e: StockAdded, rec) -> None:
            self.rows[rec.stream_id]["on_hand"] += e.qty

        @applies("ItemSold")
        def sold(self, e: ItemSold, rec) -> None:
            row = self.rows[rec.stream_id]
            row["on_hand"] -= e.qty
            row["sold"] += e.qty

    shop.sql_projection(
        "sales_by_day",
        "SELECT CAST(occurred_at AS DATE) AS day, count(*) AS sales, "
        "sum((data->>'qty')::BIGINT) AS items FROM events WHERE type = 'ItemSold' "
        "GROUP BY day",
    )

    @shop.query("LowStock")
    class LowStock(Query):
        below: int

    @shop.query_handler("LowStock")
    def low_stock(q: LowStock, reads) -> list[dict]:
        return reads.table("stock").where(col("on_hand") < q.below).order_by("sku").records()

    return shop


@pytest.fixture
def app(store: EventStore) -> App:
    return App(make_shop(), store, clock=ManualClock(T0, tick=timedelta(hours=7)),
               ids=SequentialIds(seed=11))


def fill(app: App) -> None:
    app.dispatch("ListProduct", {"sku": "tea", "name": "Green tea", "price": "4.50",
                                 "tags": ["drink", "hot"], "attributes": {"grams": 100}})
    app.dispatch("ListProduct", {"sku": "mug", "name": "Mug", "price": "9.99"})
    app.dispatch("AddStock", {"sku": "tea", "qty": 20})
    app.dispatch("AddStock", {"sku": "mug", "qty": 3})
    for i in range(4):
        app.dispatch("Sell", {"sku": "tea", "qty": 2 + i, "at": T0 + timedelta(days=i)})
    app.dispatch("Sell", {"sku": "mug", "qty": 1, "at": T0})


def oracle_stock(app: App) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = {}
    for r in app.store.read_all():
        row = out.setdefault(r.stream_id, [0, 0])
        if r.type == "StockAdded":
            row[0] += r.data["qty"]
        elif r.type == "ItemSold":
            row[0] -= r.data["qty"]
            row[1] += r.data["qty"]
    return {k: tuple(v) for k, v in out.items()}


def test_append_assigns_versions_and_positions(app: App) -> None:
    fill(app)
    tea = app.store.read_stream("tea")
    assert [r.version for r in tea] == list(range(1, 7))
    assert [r.type for r in tea] == ["ProductListed", "StockAdded"] + ["ItemSold"] * 4
    positions = [r.position for r in app.store.read_all()]
    assert positions == list(range(1, app.store.head_position + 1))
    assert app.store.stream_version("mug") == 3


def test_replay_rebuilds_aggregate_state_at_any_version(app: App) -> None:
    fill(app)
    tea = app.load("Product", "tea")
    assert (tea.stock, tea.sold, tea.version) == (6, 14, 6)
    # fold by hand, version by version, and compare with the App's load
    stock = sold = 0
    for r in app.store.read_stream("tea"):
        stock += r.data.get("qty", 0) * {"StockAdded": 1, "ItemSold": -1}.get(r.type, 0)
        sold += r.data["qty"] if r.type == "ItemSold" else 0
        past = app.load("Product", "tea", version=r.version)
        assert (past.stock, past.sold, past.version) == (stock, sold, r.version)
    fresh = App(make_shop(), app.store)  # another session over the same log
    assert fresh.load("Product", "tea").state() == tea.state()


def test_events_round_trip_through_the_store(app: App) -> None:
    fill(app)
    (listed,) = app.store.read_stream("tea", 1, 1)
    event = app.decoder.decode(listed)
    assert type(event).__name__ == "ProductListed"
    assert event.price == Decimal("4.50") and isinstance(event.price, Decimal)
    assert event.tags == ["drink", "hot"] and event.available_from == date(2024, 1, 1)
    assert event.attributes == {"grams": 100}
    sold = app.decoder.decode(app.store.read_stream("tea", 3, 3)[0])
    assert sold.sold_at == T0 and sold.sold_at.tzinfo is not None
    assert listed.occurred_at == T0 and listed.metadata["command"] == "ListProduct"
    # what is stored is plain JSON: it decodes to an equal object, again and again
    again = app.decoder.decode(app.store.read_stream("tea", 1, 1)[0])
    assert again == event


def test_domain_error_in_the_flow(app: App) -> None:
    fill(app)
    with pytest.raises(OutOfStock) as info:
        app.dispatch("Sell", {"sku": "mug", "qty": 5, "at": T0})
    assert (info.value.command, info.value.stream_id) == ("Sell", "mug")
    assert "only 2 of 'Mug' left" in str(info.value)


def test_full_flow_command_event_projection_query(app: App) -> None:
    app.follow("stock")
    fill(app)
    assert app.projections.checkpoint("stock") == app.store.head_position
    assert app.query("LowStock", {"below": 5}) == [
        {"sku": "mug", "name": "Mug", "on_hand": 2, "sold": 1}]
    recs = app.dispatch("Sell", {"sku": "tea", "qty": 3, "at": T0})
    assert recs[0].type == "ItemSold"
    low = app.query("LowStock", {"below": 5})
    assert [r["sku"] for r in low] == ["mug", "tea"] and low[1]["on_hand"] == 3
    table = {r["sku"]: (r["on_hand"], r["sold"]) for r in app.read().table("stock").records()}
    assert table == oracle_stock(app)


def test_sql_and_python_projections_of_the_same_events(app: App) -> None:
    fill(app)
    days = app.read().table("sales_by_day").order_by("day").records()
    sold = [r for r in app.store.read_all() if r.type == "ItemSold"]
    by_day: dict[date, list[int]] = {}
    for r in sold:
        d = r.occurred_at.date()
        by_day.setdefault(d, [0, 0])
        by_day[d][0] += 1
        by_day[d][1] += r.data["qty"]
    assert [(r["day"].date() if hasattr(r["day"], "date") else r["day"], r["sales"],
             r["items"]) for r in days] == [(d, n, q) for d, (n, q) in sorted(by_day.items())]
    stock = {r["sku"]: r["sold"] for r in app.read().table("stock").records()}
    assert sum(stock.values()) == sum(r["items"] for r in days)


def test_rebuild_replays_everything_into_the_same_tables(app: App) -> None:
    fill(app)
    before = app.read().table("stock").order_by("sku").df()
    before_sql = app.read().table("sales_by_day").order_by("day").df()
    app.projections.connection.execute("DELETE FROM stock")  # damage the read model
    assert app.read(consistent=False).table("stock").count() == 0
    assert app.projections.rebuild() == {"stock": app.store.head_position,
                                         "sales_by_day": app.store.head_position}
    assert app.read().table("stock").order_by("sku").df().equals(before)
    assert app.read().table("sales_by_day").order_by("day").df().equals(before_sql)


def test_projection_as_of_a_past_position(app: App) -> None:
    fill(app)
    sold_positions = [r.position for r in app.store.read_all() if r.type == "ItemSold"]
    past = app.as_of(position=sold_positions[1]).projection("stock")
    tea = past.set_index("sku").loc["tea"]
    assert (tea.on_hand, tea.sold) == (20 - 2 - 3, 5)
