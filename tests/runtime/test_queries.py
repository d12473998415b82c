"""Queries: handlers routed by name, the read side, the query DSL and raw SQL.

Every filter value is a ``?`` parameter (never interpolated); unknown columns and tables are
QueryErrors that list what exists; reads are consistent with the caller's last write.
"""

from __future__ import annotations

import pytest

from allframe_lab import App, Query, SequentialIds
from allframe_lab.errors import QueryError, UnknownNameError, ValidationError
from allframe_lab.runtime.query_dsl import asc, col, desc, select
from allframe_lab.store import EventStore
from tests.bank import make_bank

ACCOUNTS = {"a1": ("ann", 500), "a2": ("bob", 50), "a3": ("ann", 120), "a4": ("cy", 0),
            "a5": ("O'Brien; DROP TABLE balances; --", 75)}


def make_model():
    bank = make_bank()

    @bank.query("RichAccounts")
    class RichAccounts(Query):
        min_balance: int
        owner: str | None = None

    @bank.query_handler("RichAccounts")
    def rich(q: RichAccounts, reads) -> list[str]:
        t = reads.table("balances").where(col("balance") >= q.min_balance)
        if q.owner is not None:
            t = t.where(owner=q.owner)
        return [r["account_id"] for r in t.order_by("-balance").records()]

    @bank.query("Orphan")
    class Orphan(Query):
        pass

    return bank


@pytest.fixture
def app(store: EventStore) -> App:
    app = App(make_model(), store, ids=SequentialIds(seed=9))
    for acc, (owner, amount) in ACCOUNTS.items():
        app.dispatch("OpenAccount", {"account_id": acc, "owner": owner})
        if amount:
            app.dispatch("Deposit", {"account_id": acc, "amount": amount})
    return app


def oracle(app: App) -> dict[str, tuple[str, int]]:
    """Balances folded by hand from the log."""
    out: dict[str, list] = {}
    for r in app.store.read_all():
        if r.type == "AccountOpened":
            out[r.stream_id] = [r.data["owner"], 0]
        elif r.type == "FundsDeposited":
            out[r.stream_id][1] += r.data["amount"]
        elif r.type == "FundsWithdrawn":
            out[r.stream_id][1] -= r.data["amount"]
    return {k: tuple(v) for k, v in out.items()}


def test_query_handler_by_name_and_by_object(app: App) -> None:
    assert app.query("RichAccounts", {"min_balance": 100}) == ["a1", "a3"]
    q = app.model.queries["RichAccounts"](min_balance=60, owner="ann")
    assert app.query(q) == ["a1", "a3"]
    expected = sorted((k for k, (_, b) in oracle(app).items() if b >= 60),
                      key=lambda k: -oracle(app)[k][1])
    assert app.query("RichAccounts", {"min_balance": 60}) == expected


def test_read_your_writes_without_following(app: App) -> None:
    assert app.query("RichAccounts", {"min_balance": 600}) == []
    app.dispatch("Deposit", {"account_id": "a2", "amount": 1000})
    # the projection is caught up to the caller's last write before the handler reads
    assert app.query("RichAccounts", {"min_balance": 600}) == ["a2"]
    assert app.projections.checkpoint("balances") == app.last_position


def test_inconsistent_and_positioned_reads(app: App) -> None:
    app.projections.catch_up("balances")
    app.dispatch("Deposit", {"account_id": "a4", "amount": 999})
    stale = app.read(consistent=False).table("balances").where(account_id="a4").one()
    assert stale["balance"] == 0  # as the table was: no catch-up
    fresh = app.read(position=app.last_position).table("balances").where(account_id="a4").one()
    assert fresh["balance"] == 999


def test_query_errors(app: App) -> None:
    with pytest.raises(UnknownNameError) as info:
        app.query("PoorAccounts", {})
    assert "RichAccounts" in str(info.value) and "Orphan" in str(info.value)
    with pytest.raises(UnknownNameError, match="query handler"):
        app.query("Orphan", {})
    with pytest.raises(ValidationError) as vinfo:
        app.query("RichAccounts", {"min_balance": "many", "owner": 3})
    assert [e.field for e in vinfo.value.errors] == ["min_balance", "owner"]


def test_dsl_filters_sorts_and_pages(app: App) -> None:
    t = app.read().table("balances")
    assert t.count() == len(ACCOUNTS)
    by_balance = t.order_by(desc("balance"), asc("account_id"))
    assert [r["account_id"] for r in by_balance.records()] == ["a1", "a3", "a5", "a2", "a4"]
    assert [r["account_id"] for r in by_balance.limit(2).offset(1).records()] == ["a3", "a5"]
    assert by_balance.first()["account_id"] == "a1"
    assert t.where(col("balance").between(50, 120)).count() == 3
    assert t.where(col("owner").isin(["bob", "cy"])).order_by("account_id").df() \
        .account_id.tolist() == ["a2", "a4"]
    assert t.where(col("owner").isin([])).count() == 0
    assert t.where(col("owner").like("a%")).count() == 2
    assert t.where((col("balance") > 400) | (col("balance") == 0)).count() == 2
    assert t.where(~(col("owner") == "ann")).count() == 3
    assert t.where(col("owner") != "ann", col("balance") > 0).count() == 2
    assert t.where(col("owner") == None).count() == 0  # noqa: E711 (IS NULL)
    assert t.select("account_id").where(account_id="a2").records() == [{"account_id": "a2"}]
    df = t.where(owner="ann").df()
    assert sorted(df.account_id) == ["a1", "a3"] and list(df.columns) == [
        "account_id", "balance", "owner"]


def test_values_are_parameters_never_sql(app: App) -> None:
    evil = ACCOUNTS["a5"][0]
    q = app.read().table("balances").where(owner=evil)
    sql, params = q.compile()
    assert evil not in sql and params == [evil]
    assert q.one()["account_id"] == "a5"
    assert app.read().table("balances").count() == len(ACCOUNTS)  # the table is still there
    with pytest.raises(QueryError, match="not a valid column"):
        select("balances").where(col('balance" OR 1=1 --') == 1)
    with pytest.raises(QueryError, match="not a valid column"):
        app.read().table("balances; DROP TABLE events")


def test_unknown_columns_and_tables_list_what_exists(app: App) -> None:
    with pytest.raises(QueryError) as info:
        app.read().table("balances").where(col("balanse") > 1).df()
    msg = str(info.value)
    assert "'balanse'" in msg and "['account_id', 'balance', 'owner']" in msg
    with pytest.raises(QueryError, match="no column"):
        app.read().table("balances").order_by("-colour").df()
    with pytest.raises(QueryError) as info:
        app.read().table("ledger").df()
    assert "balances" in str(info.value) and "totals" in str(info.value)


def test_misuse_of_the_dsl_is_a_query_error(app: App) -> None:
    t = app.read().table("balances")
    with pytest.raises(QueryError, match="exactly one row"):
        t.where(owner="ann").one()
    with pytest.raises(QueryError, match="exactly one row"):
        t.where(owner="nobody").one()
    assert t.where(owner="nobody").first() is None
    with pytest.raises(QueryError, match=r"with & and \|"):
        t.where(col("balance") > 1 and col("balance") < 5)
    with pytest.raises(QueryError, match="non-negative"):
        t.limit(-1)
    with pytest.raises(QueryError, match="conditions"):
        t.where("balance > 1")  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="not bound"):
        select("balances").df()


def test_events_table_and_raw_sql(app: App) -> None:
    reads = app.read()
    deposits = reads.table("events").where(type="FundsDeposited").order_by("position")
    assert deposits.count() == sum(1 for _, a in ACCOUNTS.values() if a)
    df = reads.sql("SELECT owner, sum(balance) AS total FROM balances WHERE balance > ? "
                   "GROUP BY owner ORDER BY owner", [10])
    assert dict(zip(df.owner, df.total, strict=True)) == {"ann": 620, "bob": 50, evil(): 75}
    both = reads.sql("SELECT b.account_id, t.events FROM balances b JOIN totals t "
                     "USING (account_id) ORDER BY account_id")
    assert both.events.tolist() == [2, 2, 2, 1, 2]
    assert dict(zip(reads.projection("balances").account_id,
                    reads.projection("balances").balance, strict=True)) == {
        k: b for k, (_, b) in oracle(app).items()}


def evil() -> str:
    return ACCOUNTS["a5"][0]


def test_multiple_projections_from_the_same_events(app: App) -> None:
    """Two read models (Python and SQL) of one log agree with each other and the oracle."""
    app.dispatch("Withdraw", {"account_id": "a1", "amount": 200})
    reads = app.read()
    py = {r["account_id"]: r["balance"] for r in reads.table("balances").records()}
    sql = {r["account_id"]: r["balance"] for r in reads.table("totals").records()}
    assert py == sql == {k: b for k, (_, b) in oracle(app).items()}
