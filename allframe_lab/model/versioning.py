"""Event versioning: field-level schema evolution, upcasters and their validated chain.

An event class declared with ``@model.event("UserCreated", version=3)`` must say how a stored
payload of every older version reaches version 3, one step at a time (v1 -> v2 -> v3). A step
``v -> v+1`` is covered by

- an explicit upcaster: a pure function ``dict -> dict`` declared inline in the class with
  :func:`upcasts` (a static method) or with ``@model.upcaster("UserCreated", from_version=v)``
  *before* the event (renames, splits, type changes), and/or
- field declarations of the class's fields: :func:`added_in` (a field added in ``v+1``,
  filled with its default) and :func:`renamed_from` (a field renamed in ``v+1``).

When both exist for a step, the explicit function runs first and the generated field moves
after it. The chain is checked when the event is declared: a missing step, a step declared
twice, a step beyond the declared version or one that goes backwards (a cycle) is a
:class:`~allframe_lab.errors.ModelDefinitionError` that names the step and the fix.

Upcasting happens when events are read; stored rows are never changed (except by an explicit
``allframe-lab migrate``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field
from pydantic_core import PydanticUndefined

from allframe_lab.errors import ModelDefinitionError

__all__ = [
    "UpcastStep",
    "UpcasterChain",
    "added_in",
    "build_chain",
    "renamed_from",
    "state_fingerprint",
    "upcasts",
]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

ADDED_IN = "x-added-in"
RENAMED_FROM = "x-renamed-from"
_UPCASTS = "__allframe_upcasts__"
_IMMUTABLE = (str, int, float, bool, bytes, type(None), tuple, frozenset)


def _field(extra: dict[str, Any], default: Any, default_factory: Callable[[], Any] | None,
           kwargs: dict[str, Any]) -> Any:
    user_extra = kwargs.pop("json_schema_extra", None) or {}
    if not isinstance(user_extra, dict):
        raise ModelDefinitionError("json_schema_extra must be a dict when versioning a field")
    if default_factory is not None:
        return Field(default_factory=default_factory, json_schema_extra={**user_extra, **extra},
                     **kwargs)
    return Field(default, json_schema_extra={**user_extra, **extra}, **kwargs)


def added_in(version: int, /, *, default: Any = PydanticUndefined,
             default_factory: Callable[[], Any] | None = None, **field_kwargs: Any) -> Any:
    """Declare an event field that was added in schema ``version``.

    Payloads stored before ``version`` lack the field; the generated upcaster step
    ``version-1 -> version`` fills it with the default. Without a default, an explicit
    upcaster for that step must compute it.

    Parameters
    ----------
    version : int
        The schema version (>= 2) that introduced the field.
    default, default_factory
        The value of the field in older payloads (and for new events that omit it).
    **field_kwargs
        Passed to :func:`pydantic.Field` (``description``, ``ge`` ...).

    Returns
    -------
    pydantic.fields.FieldInfo
        Use it as the field's default: ``email: str = added_in(2, default="")``.

    Examples
    --------
    >>> from allframe_lab import Model, Event, added_in
    >>> m = Model("users")
    >>> @m.event("UserCreated", version=2)
    ... class UserCreated(Event):
    ...     name: str
    ...     email: str = added_in(2, default="")
    >>> m.decode("UserCreated", 1, {"name": "ann"})
    UserCreated(name='ann', email='')
    """
    return _field({ADDED_IN: version}, default, default_factory, field_kwargs)


def renamed_from(old_name: str, /, *, in_version: int, default: Any = PydanticUndefined,
                 default_factory: Callable[[], Any] | None = None, **field_kwargs: Any) -> Any:
    """Declare an event field that schema ``in_version`` renamed from ``old_name``.

    The generated upcaster step ``in_version-1 -> in_version`` moves the value of
    ``old_name`` to the field's current name.

    Examples
    --------
    >>> from allframe_lab import Model, Event, renamed_from
    >>> m = Model("users")
    >>> @m.event("UserCreated", version=2)
    ... class UserCreated(Event):
    ...     full_name: str = renamed_from("name", in_version=2)
    >>> m.decode("UserCreated", 1, {"name": "ann"})
    UserCreated(full_name='ann')
    """
    if not isinstance(old_name, str) or not old_name:
        raise ModelDefinitionError(f"renamed_from needs the old field name, got {old_name!r}")
    return _field({RENAMED_FROM: [old_name, in_version]}, default, default_factory,
                  field_kwargs)


def upcasts(*, from_version: int, to_version: int | None = None) -> Callable[[Any], Any]:
    """Mark a static method of an event class as the upcaster ``from_version -> +1``.

    The function takes the stored payload (a ``dict`` of version ``from_version``) and
    returns the payload of the next version. It must be pure: no I/O, no clock. Declaring
    the steps inline keeps the chain complete when the class is defined.

    Parameters
    ----------
    from_version : int
        The version the function reads (>= 1).
    to_version : int, optional
        Must be ``from_version + 1`` when given (upcasters move one version at a time).

    Examples
    --------
    >>> from allframe_lab import Model, Event, upcasts
    >>> m = Model("users")
    >>> @m.event("UserCreated", version=2)
    ... class UserCreated(Event):
    ...     first: str
    ...     last: str
    ...     @upcasts(from_version=1)
    ...     def split_name(data):
    ...         first, _, last = data.pop("name").partition(" ")
    ...         return {**data, "first": first, "last": last}
    >>> m.decode("UserCreated", 1, {"name": "Ann Lee"})
    UserCreated(first='Ann', last='Lee')
    """
    check_step("@upcasts", from_version, to_version)

    def decorate(fn: Any) -> Any:
        inner = fn.__func__ if isinstance(fn, staticmethod) else fn
        if not callable(inner):
            raise ModelDefinitionError(f"@upcasts needs a function, got {fn!r}")
        setattr(inner, _UPCASTS, (from_version, to_version))
        return staticmethod(inner)

    return decorate


def check_step(where: str, from_version: Any, to_version: Any) -> None:
    if not isinstance(from_version, int) or isinstance(from_version, bool) or from_version < 1:
        raise ModelDefinitionError(f"{where}: from_version must be an int >= 1, "
                                   f"got {from_version!r}")
    if to_version is None or to_version == from_version + 1:
        return
    if isinstance(to_version, int) and to_version <= from_version:
        raise ModelDefinitionError(
            f"{where}: a step from v{from_version} back to v{to_version} goes backwards and "
            "would make a cycle; upcasters only move a payload forward, one version at a time"
        )
    raise ModelDefinitionError(
        f"{where}: a step from v{from_version} to v{to_version} skips versions; declare one "
        f"upcaster per step (from_version={from_version}, then {from_version + 1}, ...)"
    )


#: How an added field is filled: ``(True, constant)`` or ``(False, zero-argument factory)``.
Default = tuple[bool, Any]


def _default_maker(info: Any) -> Default | None:
    """How to fill a field's default in an old payload (a fresh copy each time), or None."""
    if info.default_factory is not None:
        return (False, info.default_factory)
    if info.default is PydanticUndefined:
        return None
    value = info.default
    if isinstance(value, _IMMUTABLE):
        return (True, value)
    return (False, lambda: copy.deepcopy(value))


@dataclass(frozen=True, slots=True)
class UpcastStep:
    """One step ``from_version -> from_version + 1`` of an event's upcaster chain.

    Attributes
    ----------
    from_version : int
    function : callable or None
        The explicit upcaster, if any.
    source : str
        Where the explicit upcaster was declared: ``"inline"``, ``"model"`` or ``""``.
    renamed : tuple of (old, new)
        Field renames generated from :func:`renamed_from`.
    added : tuple of str
        Fields filled with their defaults, generated from :func:`added_in`.
    """

    from_version: int
    function: Upcaster | None
    source: str
    renamed: tuple[tuple[str, str], ...]
    added: tuple[str, ...]
    _defaults: tuple[Default | None, ...] = ()

    @property
    def to_version(self) -> int:
        return self.from_version + 1

    @property
    def only_adds(self) -> bool:
        """True if the step only fills added fields (pydantic's defaults do the same)."""
        return self.function is None and not self.renamed

    def describe(self) -> str:
        parts = []
        if self.function is not None:
            parts.append(f"{getattr(self.function, '__name__', 'upcaster')}() ({self.source})")
        parts += [f"rename {o} -> {n}" for o, n in self.renamed]
        if self.added:
            parts.append("add " + ", ".join(self.added))
        return f"v{self.from_version}->v{self.to_version}: " + "; ".join(parts)


class UpcasterChain:
    """The validated upcaster steps of one event type, from v1 to its declared version.

    Built by :func:`build_chain` when the event is declared; see ``Model.upcaster_chain``.
    """

    __slots__ = ("_compiled", "event", "steps", "version")

    def __init__(self, event: str, version: int, steps: tuple[UpcastStep, ...]) -> None:
        self.event = event
        self.version = version
        self.steps = steps
        self._compiled: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

    def needs_transform(self, from_version: int) -> bool:
        """False if a payload of ``from_version`` validates as is (the remaining steps only
        add fields whose defaults pydantic fills itself)."""
        return not all(s.only_adds for s in self.steps[from_version - 1:])

    def function(self, from_version: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """One function applying every step from ``from_version`` to the declared version.

        The function may change the dict it is given (pass a copy you own) and returns the
        upcast payload.
        """
        fn = self._compiled.get(from_version)
        if fn is None:
            fn = self._compiled[from_version] = _compose(
                self.event, self.steps[from_version - 1:])
        return fn

    def upcast(self, data: Mapping[str, Any], from_version: int,
               to_version: int | None = None) -> dict[str, Any]:
        """Apply the steps ``from_version -> ... -> to_version`` to a copy of ``data``."""
        to = self.version if to_version is None else to_version
        if to == self.version:
            return self.function(from_version)(dict(data))
        return _compose(self.event, self.steps[from_version - 1:to - 1])(dict(data))

    def __repr__(self) -> str:
        steps = "; ".join(s.describe() for s in self.steps) or "no steps"
        return f"<UpcasterChain {self.event} v1->v{self.version}: {steps}>"


def _compose(event: str, steps: tuple[UpcastStep, ...]
             ) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Compile the steps into one function (one Python call per payload plus the explicit
    upcasters; replays call it for every old event, so the field moves are inlined)."""
    ns: dict[str, Any] = {"_not_dict": _not_dict}
    lines = ["def upcast(data):"]
    for k, step in enumerate(steps):
        if step.function is not None:
            ns[f"_f{k}"] = step.function
            ns[f"_s{k}"] = (event, step)
            lines.append(f"    data = _f{k}(data)")
            lines.append(f"    if type(data) is not dict: data = _not_dict(data, _f{k}, *_s{k})")
        for old, new in step.renamed:
            lines.append(f"    if {old!r} in data: data[{new!r}] = data.pop({old!r})")
        for j, (name, how) in enumerate(zip(step.added, step._defaults, strict=True)):
            if how is None:
                continue  # an explicit upcaster computes it
            ns[f"_d{k}_{j}"] = how[1]
            value = f"_d{k}_{j}" if how[0] else f"_d{k}_{j}()"
            lines.append(f"    if {name!r} not in data: data[{name!r}] = {value}")
    lines.append("    return data")
    exec("\n".join(lines), ns)  # names are repr() literals; values live in ns
    fn: Callable[[dict[str, Any]], dict[str, Any]] = ns["upcast"]
    fn.__qualname__ = fn.__name__ = f"upcast_{event}"
    return fn


def _not_dict(out: Any, fn: Any, event: str, step: UpcastStep) -> dict[str, Any]:
    if isinstance(out, Mapping):
        return dict(out)
    raise TypeError(
        f"the upcaster {getattr(fn, '__name__', fn)!r} of {event} "
        f"v{step.from_version}->v{step.to_version} returned {type(out).__name__}; "
        "it must return the new payload as a dict"
    )


def inline_upcasters(cls: type) -> dict[int, tuple[str, Upcaster, int | None]]:
    """The ``@upcasts`` static methods of an event class: from_version -> (name, fn, to).

    Raises
    ------
    ModelDefinitionError
        If two methods claim the same step.
    """
    found: dict[int, tuple[str, Upcaster, int | None]] = {}
    for attr, value in vars(cls).items():
        fn = value.__func__ if isinstance(value, staticmethod) else value
        marked = getattr(fn, _UPCASTS, None)
        if marked is None:
            continue
        v, to = marked
        if v in found:
            raise ModelDefinitionError(
                f"{cls.__name__}: {found[v][0]}() and {attr}() both upcast v{v} -> v{v + 1}; "
                "keep one function per step"
            )
        found[v] = (attr, fn, to)
    return found


def build_chain(event: str, cls: type, version: int,
                standalone: Mapping[int, Upcaster]) -> UpcasterChain:
    """Build and check the upcaster chain of an event class declared at ``version``.

    Parameters
    ----------
    event : str
        The event's type name.
    cls : type
        The event class (its ``@upcasts`` methods and versioned fields are read).
    version : int
        The declared schema version.
    standalone : mapping of int to callable
        Upcasters declared with ``@model.upcaster(event, from_version=v)``, by ``v``. Those
        at or past ``version`` are ignored (declared ahead of a version bump).

    Raises
    ------
    ModelDefinitionError
        Listing every problem at once: a step with nothing that covers it (a gap), a step
        declared twice, a step beyond ``version``, a backwards step (a cycle), a versioned
        field outside ``2..version``, or an added field without a default whose step has no
        explicit upcaster.
    """
    problems: list[str] = []
    try:
        inline = inline_upcasters(cls)
    except ModelDefinitionError as exc:
        problems.append(str(exc))
        inline = {}
    for v, (attr, _fn, to) in inline.items():
        try:
            check_step(f"{cls.__name__}.{attr}", v, to)
        except ModelDefinitionError as exc:
            problems.append(str(exc))
    explicit: dict[int, tuple[Upcaster, str, str]] = {}
    for v, (attr, fn, _to) in inline.items():
        explicit[v] = (fn, "inline", f"{cls.__name__}.{attr}()")
    for v, fn in standalone.items():
        if v >= version:
            continue  # declared ahead of a version bump: used once the event reaches v + 1
        name = f"@model.upcaster({event!r}, from_version={v}) {getattr(fn, '__name__', '')}()"
        if v in explicit:
            problems.append(
                f"the step v{v} -> v{v + 1} of {event} is declared twice: {explicit[v][2]} and "
                f"{name}; keep one (re-create the Model to forget a model-level upcaster)")
            continue
        explicit[v] = (fn, "model", name)
    for v, (_fn, _src, name) in sorted(explicit.items()):
        if v >= version:
            problems.append(
                f"{name} moves {event} from v{v} to v{v + 1}, past the declared version "
                f"{version}; declare @model.event({event!r}, version={v + 1}) or remove it")
    renamed: dict[int, list[tuple[str, str]]] = {}
    added: dict[int, list[tuple[str, Default | None]]] = {}
    fields = getattr(cls, "model_fields", {})
    for fname, info in fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if ADDED_IN in extra:
            v = extra[ADDED_IN]
            if not isinstance(v, int) or not 2 <= v <= version:
                problems.append(
                    f"{cls.__name__}.{fname} is added_in({v!r}), but {event} is declared at "
                    f"version {version}: a field can be added in versions 2..{version}")
                continue
            maker = _default_maker(info)
            if maker is None and (v - 1) not in explicit:
                problems.append(
                    f"{cls.__name__}.{fname} is added in v{v} without a default, and no "
                    f"explicit upcaster v{v - 1} -> v{v} computes it; give it one "
                    f"(added_in({v}, default=...)) or declare @upcasts(from_version={v - 1})")
            added.setdefault(v, []).append((fname, maker))
        if RENAMED_FROM in extra:
            old, v = extra[RENAMED_FROM]
            if not isinstance(v, int) or not 2 <= v <= version:
                problems.append(
                    f"{cls.__name__}.{fname} is renamed_from({old!r}, in_version={v!r}), but "
                    f"{event} is declared at version {version}: use a version in 2..{version}")
                continue
            renamed.setdefault(v, []).append((old, fname))
    steps: list[UpcastStep] = []
    missing: list[int] = []
    for v in range(1, version):
        fn, src, _ = explicit.get(v, (None, "", ""))
        adds = added.get(v + 1, [])
        moves = renamed.get(v + 1, [])
        if fn is None and not adds and not moves:
            missing.append(v)
            continue
        steps.append(UpcastStep(v, fn, src, tuple(moves), tuple(a for a, _ in adds),
                                tuple(m for _, m in adds)))
    for v in missing:
        problems.append(
            f"{event} is declared at version {version}, but nothing moves a payload from "
            f"v{v} to v{v + 1}. Declare an upcaster for that step: inline as a static method "
            f"marked @upcasts(from_version={v}) in {cls.__name__}, or with "
            f"@model.upcaster({event!r}, from_version={v}) BEFORE the event; or mark the "
            f"fields added in v{v + 1} with added_in({v + 1}, default=...)")
    if problems:
        head = (f"the upcaster chain of {event} (v1 -> v{version}) is invalid "
                f"({len(problems)} problem{'s' if len(problems) != 1 else ''}):")
        raise ModelDefinitionError(head + "\n  - " + "\n  - ".join(problems))
    return UpcasterChain(event, version, tuple(steps))


def state_fingerprint(cls: type) -> str:
    """A short hash of an aggregate's state JSON Schema, stored with its snapshots.

    A snapshot whose fingerprint differs from the class's was taken from another state
    schema (a field added, removed or retyped): the repository ignores it and replays the
    stream. Cached on the class.

    Returns
    -------
    str
        16 hexadecimal digits (the start of a SHA-256).
    """
    cached = cls.__dict__.get("__state_fingerprint__")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    try:
        schema = cls.model_json_schema()  # type: ignore[attr-defined]
        schema.pop("title", None)
        schema.pop("description", None)
    except Exception:  # a field type without a JSON Schema: use the annotations
        schema = {k: repr(f.annotation) for k, f in cls.model_fields.items()}  # type: ignore[attr-defined]
    text = json.dumps(schema, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    type.__setattr__(cls, "__state_fingerprint__", digest)
    return digest
