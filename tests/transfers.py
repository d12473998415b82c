"""Money transfers between accounts: the worked saga example (shared by tests and benchmarks).

Also an order saga with a deadline: "if no PaymentReceived within 24 h, cancel".
"""

from __future__ import annotations

from datetime import timedelta

from allframe_lab import (
    Aggregate,
    Command,
    DomainError,
    Event,
    Model,
    Saga,
    applies,
    handles,
    reacts,
    starts,
    step,
)
from tests.bank import make_bank

PAYMENT_DEADLINE = timedelta(hours=24)


class OrderClosed(DomainError):
    """The order was already cancelled or paid."""


def make_transfers() -> Model:
    """The bank model plus Transfer requests and the MoneyTransfer saga."""
    bank = make_bank()
    Withdraw, Deposit = bank.commands["Withdraw"], bank.commands["Deposit"]

    @bank.event("TransferRequested")
    class TransferRequested(Event):
        transfer_id: str
        source: str
        target: str
        amount: int

    @bank.command("RequestTransfer", stream="transfer_id", creates=True)
    class RequestTransfer(Command):
        transfer_id: str
        source: str
        target: str
        amount: int

    @bank.aggregate("Transfer")
    class Transfer(Aggregate):
        amount: int = 0

        @applies("TransferRequested")
        def _requested(self, e: TransferRequested) -> None:
            self.amount = e.amount

        @handles("RequestTransfer")
        def request(self, c: RequestTransfer) -> TransferRequested:
            return TransferRequested(transfer_id=c.transfer_id, source=c.source,
                                     target=c.target, amount=c.amount)

    @bank.saga("MoneyTransfer", correlation="transfer_id")
    class MoneyTransfer(Saga):
        source: str = ""
        target: str = ""
        amount: int = 0

        @starts("TransferRequested")
        def begin(self, e: TransferRequested) -> None:
            self.source, self.target, self.amount = e.source, e.target, e.amount

        @step(compensate="refund")
        def withdraw(self) -> Command:
            return Withdraw(account_id=self.source, amount=self.amount)

        def refund(self) -> Command:
            return Deposit(account_id=self.source, amount=self.amount)

        @step()
        def deposit(self) -> Command:
            return Deposit(account_id=self.target, amount=self.amount)

    return bank


def make_orders() -> Model:
    """Orders with stock reservation and a 24 h payment deadline."""
    shop = Model("shop")

    @shop.event("OrderPlaced")
    class OrderPlaced(Event):
        order_id: str
        sku: str

    @shop.event("StockReserved")
    class StockReserved(Event):
        order_id: str

    @shop.event("StockReleased")
    class StockReleased(Event):
        order_id: str

    @shop.event("PaymentReceived")
    class PaymentReceived(Event):
        order_id: str

    @shop.event("OrderCancelled")
    class OrderCancelled(Event):
        order_id: str
        reason: str

    @shop.command("PlaceOrder", stream="order_id", creates=True)
    class PlaceOrder(Command):
        order_id: str
        sku: str

    @shop.command("ReserveStock", stream="order_id")
    class ReserveStock(Command):
        order_id: str

    @shop.command("ReleaseStock", stream="order_id")
    class ReleaseStock(Command):
        order_id: str

    @shop.command("Pay", stream="order_id")
    class Pay(Command):
        order_id: str

    @shop.command("CancelOrder", stream="order_id")
    class CancelOrder(Command):
        order_id: str
        reason: str

    @shop.aggregate("Order")
    class Order(Aggregate):
        status: str = "new"
        reserved: bool = False

        @applies("OrderPlaced")
        def _placed(self, e: OrderPlaced) -> None:
            self.status = "placed"

        @applies("StockReserved")
        def _reserved(self, e: StockReserved) -> None:
            self.reserved = True

        @applies("StockReleased")
        def _released(self, e: StockReleased) -> None:
            self.reserved = False

        @applies("PaymentReceived")
        def _paid(self, e: PaymentReceived) -> None:
            self.status = "paid"

        @applies("OrderCancelled")
        def _cancelled(self, e: OrderCancelled) -> None:
            self.status = "cancelled"

        @handles("PlaceOrder")
        def place(self, c: PlaceOrder) -> OrderPlaced:
            return OrderPlaced(order_id=c.order_id, sku=c.sku)

        @handles("ReserveStock")
        def reserve(self, c: ReserveStock) -> StockReserved:
            return StockReserved(order_id=c.order_id)

        @handles("ReleaseStock")
        def release(self, c: ReleaseStock) -> StockReleased:
            return StockReleased(order_id=c.order_id)

        @handles("Pay")
        def pay(self, c: Pay) -> PaymentReceived:
            if self.status != "placed":
                raise OrderClosed(f"order {c.order_id} is {self.status}")
            return PaymentReceived(order_id=c.order_id)

        @handles("CancelOrder")
        def cancel(self, c: CancelOrder) -> OrderCancelled:
            return OrderCancelled(order_id=c.order_id, reason=c.reason)

    @shop.saga("Checkout", correlation="order_id")
    class Checkout(Saga):
        order_id: str = ""
        paid: bool = False

        @starts("OrderPlaced")
        def begin(self, e: OrderPlaced) -> None:
            self.order_id = e.order_id

        @step(compensate="release")
        def reserve(self) -> Command:
            return ReserveStock(order_id=self.order_id)

        def release(self) -> Command:
            return ReleaseStock(order_id=self.order_id)

        @step(wait_for="PaymentReceived", timeout=PAYMENT_DEADLINE, compensate="cancel")
        def await_payment(self) -> None:
            return None  # nothing to send: the customer pays

        def cancel(self) -> Command:
            return CancelOrder(order_id=self.order_id, reason="no payment within 24 h")

        @reacts("PaymentReceived")
        def _paid(self, e: PaymentReceived) -> None:
            self.paid = True

    return shop
