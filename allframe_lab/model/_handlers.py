"""Marking methods as event appliers / command handlers, and collecting the marks by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from allframe_lab.errors import ModelDefinitionError

F = TypeVar("F", bound=Callable[..., Any])

WILDCARD = "*"

_MARK = "__allframe_marks__"


@dataclass(frozen=True, slots=True)
class HandlerRef:
    """A method that handles one message type, found on a declared class."""

    method: str
    wants_record: bool


def type_name_of(target: object) -> str:
    """Accept a message class or a type name, return the type name."""
    if isinstance(target, str):
        return target
    name = getattr(target, "__message_type__", "")
    if isinstance(target, type) and name:
        return name
    raise ModelDefinitionError(
        f"expected a type name or a declared message class, got {target!r}; declare the class "
        "with @model.event('Name') / @model.command('Name') first, or pass the name as a string"
    )


def mark(kind: str, targets: tuple[object, ...]) -> Callable[[F], F]:
    names = tuple(type_name_of(t) for t in targets)
    if not names:
        raise ModelDefinitionError(f"@{kind}() needs at least one message type")

    def decorate(fn: F) -> F:
        marks = getattr(fn, _MARK, ())
        setattr(fn, _MARK, (*marks, *((kind, n) for n in names)))
        return fn

    return decorate


def collect(cls: type, kind: str) -> dict[str, HandlerRef]:
    """Map type name -> handler for methods of ``cls`` (and its bases) marked with ``kind``."""
    found: dict[str, HandlerRef] = {}
    for klass in reversed(cls.__mro__):
        for attr, fn in vars(klass).items():
            for mark_kind, name in getattr(fn, _MARK, ()):
                if mark_kind != kind:
                    continue
                params = [
                    p
                    for p in inspect.signature(fn).parameters.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                ]
                if len(params) not in (2, 3):
                    raise ModelDefinitionError(
                        f"{cls.__name__}.{attr} must take (self, message) or "
                        f"(self, message, record), it takes {len(params)} parameters"
                    )
                found[name] = HandlerRef(attr, wants_record=len(params) == 3)
    return found
