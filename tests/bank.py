"""A small bank model shared by the tests (defined the way a notebook would)."""

from __future__ import annotations

from allframe_lab import Aggregate, Command, DomainError, Event, Model, Projection, applies, handles


class InsufficientFunds(DomainError):
    """A withdrawal larger than the balance."""


def make_bank() -> Model:
    bank = Model("bank")

    @bank.event("AccountOpened", version=1)
    class AccountOpened(Event):
        owner: str

    @bank.event("FundsDeposited", version=1)
    class FundsDeposited(Event):
        amount: int

    @bank.event("FundsWithdrawn", version=1)
    class FundsWithdrawn(Event):
        amount: int

    @bank.command("OpenAccount", stream="account_id", creates=True)
    class OpenAccount(Command):
        account_id: str
        owner: str

    @bank.command("Deposit", stream="account_id")
    class Deposit(Command):
        account_id: str
        amount: int

    @bank.command("Withdraw", stream="account_id")
    class Withdraw(Command):
        account_id: str
        amount: int

    @bank.aggregate("Account")
    class Account(Aggregate):
        owner: str = ""
        balance: int = 0
        deposits: int = 0

        @applies("AccountOpened")
        def _opened(self, e: AccountOpened) -> None:
            self.owner = e.owner

        @applies("FundsDeposited")
        def _deposited(self, e: FundsDeposited) -> None:
            self.balance += e.amount
            self.deposits += 1

        @applies("FundsWithdrawn")
        def _withdrawn(self, e: FundsWithdrawn) -> None:
            self.balance -= e.amount

        @handles("OpenAccount")
        def open(self, c: OpenAccount) -> AccountOpened:
            return AccountOpened(owner=c.owner)

        @handles("Deposit")
        def deposit(self, c: Deposit) -> FundsDeposited:
            if c.amount <= 0:
                raise DomainError(f"deposits must be positive, got {c.amount}")
            return FundsDeposited(amount=c.amount)

        @handles("Withdraw")
        def withdraw(self, c: Withdraw) -> list[Event]:
            if c.amount > self.balance:
                raise InsufficientFunds(f"balance {self.balance} < {c.amount}")
            return [FundsWithdrawn(amount=c.amount)]

    @bank.projection("balances", key="account_id", columns={"balance": "BIGINT"})
    class Balances(Projection):
        @applies("AccountOpened")
        def opened(self, e: AccountOpened, rec) -> None:
            self.rows[rec.stream_id] = {"account_id": rec.stream_id, "owner": e.owner,
                                        "balance": 0}

        @applies("FundsDeposited")
        def deposited(self, e: FundsDeposited, rec) -> None:
            self.rows[rec.stream_id]["balance"] += e.amount

        @applies("FundsWithdrawn")
        def withdrawn(self, e: FundsWithdrawn, rec) -> None:
            self.rows[rec.stream_id]["balance"] -= e.amount

    bank.sql_projection(
        "totals",
        "SELECT stream_id AS account_id, "
        "sum(CASE type WHEN 'FundsDeposited' THEN (data->>'amount')::BIGINT "
        "WHEN 'FundsWithdrawn' THEN -(data->>'amount')::BIGINT ELSE 0 END) AS balance, "
        "count(*) AS events FROM events GROUP BY stream_id",
    )
    return bank
