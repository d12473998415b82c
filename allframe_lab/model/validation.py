"""Turning pydantic's validation errors into the project's :class:`ValidationError`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic

from allframe_lab.errors import FieldError, ValidationError

__all__ = ["field_errors", "validate_message"]


def field_errors(exc: pydantic.ValidationError) -> list[FieldError]:
    """Every failure of a pydantic error as ``FieldError(field, message, input)``.

    Nested locations are dotted (``lines.0.qty``); model-level failures use ``"__root__"``.
    """
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "__root__"
        msg = err.get("msg", "invalid")
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        out.append(FieldError(loc, msg, err.get("input")))
    return out


def validate_message(cls: type[pydantic.BaseModel], payload: Mapping[str, Any] | Any) -> Any:
    """Build a message from a payload, raising ONE ValidationError with every failure.

    Raises
    ------
    ValidationError
        If any field is missing, mistyped or violates a constraint.
    """
    if not isinstance(payload, Mapping):
        raise ValidationError(getattr(cls, "__message_type__", "") or cls.__name__,
                              [FieldError("__root__", "expected a mapping of fields", payload)])
    try:
        return cls.model_validate(dict(payload))
    except pydantic.ValidationError as exc:
        raise ValidationError(getattr(cls, "__message_type__", "") or cls.__name__,
                              field_errors(exc)) from None
