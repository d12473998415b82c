"""The saga runner: delivers events to sagas, sends their commands, compensates, keeps deadlines.

Each saga is a durable subscription (``saga:<name>``) of the App. Instances are stored in the
store's runtime state (namespace ``saga:<name>``, one record per instance id), so progress
survives a restart. Every command a saga sends carries an idempotency key made of the saga,
the instance and the step, so a step delivered twice (at-least-once delivery after a crash)
is applied once. Commands continue the correlation chain: the instance's correlation id, and
the triggering event's id as causation id.

Lifecycle of an instance::

    running --step ok--> running ... --last step--> completed
    running --step with wait_for--> waiting --event--> running
    waiting --deadline passed (clock)--> compensating --> compensated
    running --step refused (DomainError ...) or fail()--> compensating --> compensated
    compensating --compensation refused--> stuck (SagaError, event parked)
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import (
    AggregateNotFoundError,
    CommandError,
    ConcurrencyError,
    SagaError,
    UnknownNameError,
)
from allframe_lab.model import Command
from allframe_lab.model.saga import Saga, SagaStep

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from allframe_lab.runtime.app import App

__all__ = ["SagaInstance", "SagaRunner"]

#: Statuses after which an instance ignores events.
FINAL = frozenset({"completed", "compensated", "stuck"})

# A refused step: the saga compensates. Other exceptions are bugs: the event is parked.
_STEP_FAILURES = (CommandError, ConcurrencyError, AggregateNotFoundError)


class SagaInstance:
    """One saga instance as stored: its state object and progress.

    Attributes
    ----------
    saga, id : str
    state : Saga
        The saga object (its fields are the instance state).
    status : str
        ``running``, ``waiting``, ``completed``, ``compensating``, ``compensated`` or ``stuck``.
    step : int
        Index of the current step.
    completed : list of str
        Steps done, in order.
    waiting_for : str or None
    deadline : datetime or None
    failure : str or None
    history : list of [time, text]
    """

    def __init__(self, cls: type[Saga], record: dict[str, Any]) -> None:
        self.cls = cls
        self.saga: str = record["saga"]
        self.id: str = record["id"]
        self.state: Saga = cls.model_validate(record["state"])
        self.status: str = record["status"]
        self.step: int = record["step"]
        self.completed: list[str] = list(record["completed"])
        self.waiting_for: str | None = record.get("waiting_for")
        self.deadline: datetime | None = (datetime.fromisoformat(record["deadline"])
                                          if record.get("deadline") else None)
        self.correlation_id: str = record["correlation_id"]
        self.failure: str | None = record.get("failure")
        self.history: list[list[str]] = list(record.get("history", []))
        self.to_compensate: list[str] = list(record.get("to_compensate", []))

    def record(self) -> dict[str, Any]:
        return {"saga": self.saga, "id": self.id, "state": self.state.model_dump(mode="json"),
                "status": self.status, "step": self.step, "completed": self.completed,
                "waiting_for": self.waiting_for,
                "deadline": self.deadline.isoformat() if self.deadline else None,
                "correlation_id": self.correlation_id, "failure": self.failure,
                "to_compensate": self.to_compensate, "history": self.history}

    def __repr__(self) -> str:
        return (f"<SagaInstance {self.saga}:{self.id} status={self.status} step={self.step} "
                f"completed={self.completed}>")


class SagaRunner:
    """Runs a Model's sagas for an App (``app.sagas``).

    Examples
    --------
    See ``notebooks/04_sagas.ipynb`` and :mod:`allframe_lab.model.saga`.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self._running: set[str] = set()
        self._hooked = False
        # (saga, instance) -> deadline of the waiting instances: fire_due runs after every
        # delivery round and must not read the store when nothing is due
        self._deadlines: dict[tuple[str, str], datetime] = {}

    # -------------------------------------------------------------- lifecycle
    def start(self, name: str | None = None, /, *, from_position: int | None = None) -> None:
        """Subscribe sagas (all, or one) to the log: catch up, then live.

        Parameters
        ----------
        name : str, optional
            One saga (default: every saga of the model).
        from_position : int, optional
            For a saga that has never run: ignore the log up to this position (pass
            ``app.store.head_position`` to react only to new events). By default a new saga
            reacts to the whole log, as if it had been running from the start.
        """
        names = [name] if name is not None else list(self.app.model.sagas)
        subs = self.app.subscriptions
        if not self._hooked:
            subs._hooks.append(self.fire_due)
            self._hooked = True
        for n in names:
            cls = self._class(n)
            self._running.add(n)
            subs.subscribe(f"saga:{n}", self._handler(n), from_position=from_position)
            for record in self.app.store.scan_state(_ns(n)).values():
                if record["status"] in ("running", "compensating"):  # interrupted by a crash
                    self._resume(SagaInstance(cls, record), None)
                elif record["status"] == "waiting" and record.get("deadline"):
                    self._deadlines[(n, record["id"])] = datetime.fromisoformat(
                        record["deadline"])

    def _class(self, name: str) -> type[Saga]:
        cls = self.app.model.sagas.get(name)
        if cls is None:
            raise UnknownNameError("saga", name, self.app.model.sagas)
        return cls  # type: ignore[return-value]

    def _handler(self, name: str) -> Any:
        def on_event(event: Any, rec: Any) -> None:
            self._on_event(self._class(name), event, rec)

        on_event.__name__ = f"saga_{name}"
        return on_event

    # -------------------------------------------------------------- reading instances
    def instance(self, saga: str, instance_id: str, /) -> SagaInstance | None:
        """One instance, or None."""
        record = self.app.store.get_state(_ns(saga), instance_id)
        return None if record is None else SagaInstance(self._class(saga), record)

    def instances(self, saga: str | None = None, /) -> pd.DataFrame:
        """Instances (of one saga, or all) as a DataFrame: status, step, deadline, failure."""
        import pandas as pd

        rows = []
        for n in [saga] if saga is not None else list(self.app.model.sagas):
            for record in self.app.store.scan_state(_ns(n)).values():
                rows.append({k: record.get(k) for k in (
                    "saga", "id", "status", "step", "completed", "waiting_for", "deadline",
                    "failure", "correlation_id")})
        return pd.DataFrame(rows, columns=["saga", "id", "status", "step", "completed",
                                           "waiting_for", "deadline", "failure",
                                           "correlation_id"])

    # -------------------------------------------------------------- event handling
    def _instance_id(self, cls: type[Saga], event: Any, rec: Any) -> str | None:
        meta = rec.metadata
        if meta.get("saga") == cls.__saga_name__ and meta.get("saga_id"):
            return str(meta["saga_id"])
        value = getattr(event, cls.__correlation__, None)
        if value is None:
            value = rec.data.get(cls.__correlation__)
        return None if value is None else str(value)

    def _on_event(self, cls: type[Saga], event: Any, rec: Any) -> None:
        iid = self._instance_id(cls, event, rec)
        if iid is None:
            return
        inst = self.instance(cls.__saga_name__, iid)
        if inst is None:
            starter = cls.__starts__.get(rec.type)
            if starter is None:
                return
            saga = cls()
            getattr(saga, starter.method)(event)
            inst = SagaInstance(cls, {
                "saga": cls.__saga_name__, "id": iid, "state": saga.model_dump(mode="json"),
                "status": "running", "step": 0, "completed": [],
                "correlation_id": rec.metadata.get("correlation_id") or str(rec.event_id),
                "history": []})
            inst.state = saga
            self._log(inst, f"started by {rec.type} at position {rec.position}")
            self._advance(inst, rec)
            return
        if inst.status in FINAL:
            return
        if inst.status in ("running", "compensating"):  # a crash interrupted it: resume
            self._resume(inst, rec)
            return
        reaction = cls.__reacts__.get(rec.type)
        if reaction is not None:
            getattr(inst.state, reaction.method)(event)
            self._log(inst, f"{rec.type} at position {rec.position}")
        if inst.state._failure is not None:
            inst.failure = inst.state._failure
            self._compensate(inst, rec)
            return
        if inst.status == "waiting" and rec.type == inst.waiting_for:
            step = cls.__steps__[inst.step]
            self._done(inst, step, f"{rec.type} arrived")
            self._advance(inst, rec)
            return
        self._save(inst)

    def _advance(self, inst: SagaInstance, cause: Any) -> None:
        steps = inst.cls.__steps__
        inst.status = "running"
        while inst.step < len(steps):
            step = steps[inst.step]
            command = getattr(inst.state, step.name)()
            if command is not None:
                try:
                    self._send(inst, command, f"step:{step.name}", cause)
                except _STEP_FAILURES as exc:
                    inst.failure = f"step {step.name!r} failed: {type(exc).__name__}: {exc}"
                    self._compensate(inst, cause)
                    return
            if step.wait_for is not None:
                inst.status = "waiting"
                inst.waiting_for = step.wait_for
                inst.deadline = (self.app.clock.peek() + step.timeout
                                 if step.timeout is not None else None)
                self._log(inst, f"step {step.name} waits for {step.wait_for}"
                          + (f" until {inst.deadline.isoformat()}" if inst.deadline else ""))
                self._save(inst)
                return
            self._done(inst, step, "ok")
        inst.status = "completed"
        self._log(inst, "completed")
        self._save(inst)

    def _done(self, inst: SagaInstance, step: SagaStep, how: str) -> None:
        inst.completed.append(step.name)
        inst.step += 1
        inst.waiting_for = None
        inst.deadline = None
        self._log(inst, f"step {step.name} done ({how})")
        self._save(inst)

    def _resume(self, inst: SagaInstance, cause: Any) -> None:
        """Continue an instance a crash interrupted. Steps and compensations already sent are
        answered from their idempotency keys, so nothing is applied twice."""
        self._log(inst, f"resumed ({inst.status})")
        if inst.status == "compensating":
            self._compensate(inst, cause)
        else:
            self._advance(inst, cause)

    def _compensate(self, inst: SagaInstance, cause: Any) -> None:
        steps = {s.name: s for s in inst.cls.__steps__}
        if inst.status != "compensating":  # first time: fix the list of steps to undo
            todo = list(inst.completed)
            if inst.status == "waiting" and inst.step < len(inst.cls.__steps__):
                todo.append(inst.cls.__steps__[inst.step].name)  # its command was sent
            inst.to_compensate = todo
            inst.status = "compensating"
            self._log(inst, f"compensating: {inst.failure}")
            self._save(inst)
        for name in reversed(list(inst.to_compensate)):
            method = steps[name].compensate
            command = getattr(inst.state, method)() if method is not None else None
            if command is None:
                inst.to_compensate.remove(name)
                continue
            try:
                self._send(inst, command, f"compensate:{name}", cause)
            except _STEP_FAILURES as exc:
                inst.status = "stuck"
                inst.failure = f"{inst.failure}; compensation {method!r} failed: {exc}"
                self._log(inst, f"stuck: compensation {method} failed")
                self._save(inst)
                raise SagaError(
                    f"saga {inst.saga} instance {inst.id!r} is stuck: {inst.failure}. Fix the "
                    "cause and retry the parked event (app.retry_dead_letters"
                    f"('saga:{inst.saga}'))") from exc
            inst.to_compensate.remove(name)
            self._log(inst, f"compensated {name} with {method}")
            self._save(inst)
        inst.status = "compensated"
        inst.waiting_for = None
        inst.deadline = None
        self._save(inst)

    def _send(self, inst: SagaInstance, command: Command, label: str, cause: Any) -> None:
        if not isinstance(command, Command):
            raise SagaError(f"saga {inst.saga}: {label} returned {command!r}; return a Command "
                            "or None")
        self.app.dispatch(
            command,
            idempotency_key=f"saga:{inst.saga}:{inst.id}:{label}",
            correlation_id=inst.correlation_id,
            causation_id=str(cause.event_id) if cause is not None else None,
            metadata={"saga": inst.saga, "saga_id": inst.id},
        )
        self._log(inst, f"sent {command.__message_type__} ({label})")

    # -------------------------------------------------------------- deadlines
    def fire_due(self) -> list[SagaInstance]:
        """Fail the waiting steps whose deadline has passed (App clock) and compensate.

        Runs after every delivery round; call it from a scheduler too (and after
        ``ManualClock.advance`` in tests). Returns the instances it compensated.
        """
        now = self.app.clock.peek()
        fired = []
        for saga, iid in [k for k, t in self._deadlines.items() if t <= now]:
            inst = self.instance(saga, iid)
            if inst is None or inst.status != "waiting" or inst.deadline is None \
                    or inst.deadline > now:  # stale entry: the stored record decides
                self._deadlines.pop((saga, iid), None)
                continue
            inst.failure = f"no {inst.waiting_for} by the deadline {inst.deadline.isoformat()}"
            self._compensate(inst, None)
            fired.append(inst)
        return fired

    # -------------------------------------------------------------- storage
    def _log(self, inst: SagaInstance, text: str) -> None:
        inst.history.append([self.app.clock.peek().isoformat(), text])

    def _save(self, inst: SagaInstance) -> None:
        self.app.store.put_state(_ns(inst.saga), {inst.id: inst.record()})
        if inst.status == "waiting" and inst.deadline is not None:
            self._deadlines[(inst.saga, inst.id)] = inst.deadline
        else:
            self._deadlines.pop((inst.saga, inst.id), None)

    def __repr__(self) -> str:
        return f"SagaRunner(running={sorted(self._running)})"


def _ns(saga: str) -> str:
    return f"saga:{saga}"
