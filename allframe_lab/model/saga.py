"""Sagas (process managers): react to events, keep state per instance, send commands.

A saga class is a mutable pydantic model whose fields are one instance's state. It declares:

- ``@starts("TransferRequested")``: the event types that start a new instance (the method
  fills the state from the event);
- ``@step(compensate="refund", wait_for="FundsWithdrawn", timeout=timedelta(hours=24))``: the
  ordered steps. A step method returns the command to send (or ``None``). A step is done when
  its command succeeds, or, with ``wait_for``, when that event arrives for this instance; if
  the deadline passes first, the step fails. A failing step makes the runner send the
  compensations of the completed steps, in reverse order;
- ``@reacts("PaymentReceived")``: other events to fold into the state; a reaction may call
  :meth:`Saga.fail` to stop and compensate.

Events are matched to instances by the ``correlation`` field named at registration
(``@model.saga("MoneyTransfer", correlation="transfer_id")``) or, for events caused by the
saga's own commands, by the saga id carried in their metadata.

Examples
--------
>>> from datetime import timedelta
>>> from allframe_lab import Model, Event, Command
>>> from allframe_lab.model.saga import Saga, starts, step
>>> m = Model("shop")
>>> @m.event("OrderPlaced")
... class OrderPlaced(Event):
...     order_id: str
>>> @m.command("ReserveStock")
... class ReserveStock(Command):
...     order_id: str
>>> @m.command("ReleaseStock")
... class ReleaseStock(Command):
...     order_id: str
>>> @m.saga("Checkout", correlation="order_id")
... class Checkout(Saga):
...     order_id: str = ""
...     @starts("OrderPlaced")
...     def begin(self, e):
...         self.order_id = e.order_id
...     @step(compensate="release")
...     def reserve(self):
...         return ReserveStock(order_id=self.order_id)
...     def release(self):
...         return ReleaseStock(order_id=self.order_id)
>>> [s.name for s in Checkout.__steps__], Checkout.__steps__[0].compensate
(['reserve'], 'release')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr

from allframe_lab.errors import ModelDefinitionError
from allframe_lab.model._handlers import F, collect, mark, type_name_of

__all__ = ["Saga", "SagaStep", "reacts", "starts", "step"]

_STEP = "__allframe_step__"


@dataclass(frozen=True, slots=True)
class SagaStep:
    """One declared step: its method, compensation, awaited event and deadline."""

    name: str
    compensate: str | None = None
    wait_for: str | None = None
    timeout: timedelta | None = None


def starts(*event_types: object) -> Callable[[F], F]:
    """Mark the method that starts a saga instance from an event: ``(self, event)``."""
    return mark("saga_starts", event_types)


def reacts(*event_types: object) -> Callable[[F], F]:
    """Mark a method that folds another event into a running instance: ``(self, event)``."""
    return mark("saga_reacts", event_types)


def step(
    *,
    compensate: str | None = None,
    wait_for: object | None = None,
    timeout: timedelta | None = None,
) -> Callable[[F], F]:
    """Mark a method as the next step of the saga (steps run in definition order).

    Parameters
    ----------
    compensate : str, optional
        Name of the method that returns the command undoing this step.
    wait_for : str or Event subclass, optional
        The step is complete only when this event arrives for the instance.
    timeout : timedelta, optional
        Deadline for ``wait_for``, measured with the App's clock; when it passes, the step
        fails and the completed steps are compensated.
    """
    if timeout is not None and wait_for is None:
        raise ModelDefinitionError("step(timeout=...) needs wait_for=<event type>")
    awaited = type_name_of(wait_for) if wait_for is not None else None

    def decorate(fn: F) -> F:
        setattr(fn, _STEP, SagaStep(fn.__name__, compensate, awaited, timeout))
        return fn

    return decorate


class Saga(BaseModel):
    """Base class of sagas: declare the instance state as fields with defaults."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    __saga_name__: ClassVar[str] = ""
    __correlation__: ClassVar[str] = ""
    __steps__: ClassVar[tuple[SagaStep, ...]] = ()
    __starts__: ClassVar[dict[str, Any]] = {}
    __reacts__: ClassVar[dict[str, Any]] = {}

    _failure: str | None = PrivateAttr(default=None)

    def fail(self, reason: str) -> None:
        """Stop the instance from a reaction: the completed steps are compensated."""
        self._failure = reason


def collect_saga(cls: type[Saga]) -> None:
    """Validate a saga class and store its steps, starters and reactions on it."""
    steps = []
    for klass in reversed(cls.__mro__):
        for attr, fn in vars(klass).items():
            info = getattr(fn, _STEP, None)
            if info is not None:
                steps = [s for s in steps if s.name != attr]
                steps.append(info)
    for s in steps:
        if s.compensate is not None and not callable(getattr(cls, s.compensate, None)):
            raise ModelDefinitionError(
                f"saga {cls.__name__}: step {s.name!r} names compensation {s.compensate!r}, "
                "but the class has no such method"
            )
    starters = collect(cls, "saga_starts")
    if not starters:
        raise ModelDefinitionError(
            f"saga {cls.__name__} has no @starts(<event type>) method: nothing would start it"
        )
    type.__setattr__(cls, "__steps__", tuple(steps))
    type.__setattr__(cls, "__starts__", starters)
    type.__setattr__(cls, "__reacts__", collect(cls, "saga_reacts"))
