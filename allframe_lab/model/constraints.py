"""Declarative field constraints for commands and queries, shareable as named constants.

Each helper returns pydantic/annotated-types metadata for ``typing.Annotated``, so a constraint
is declared once, under a name, and reused by every command that needs it (the seed roadmap's
"no magic numbers" rule)::

    MAX_DEPOSIT = 1_000_000                       # the rule's number has a name
    Amount = Annotated[int, Range(gt=0, le=MAX_DEPOSIT)]
    AccountId = Annotated[str, Pattern(r"acc-[0-9]+", "must look like acc-123")]

Validation collects every failure: a bad command raises one
:class:`~allframe_lab.errors.ValidationError` listing all of them.

Examples
--------
>>> from typing import Annotated
>>> from allframe_lab import Command, Model
>>> from allframe_lab.model.constraints import Length, Range, Email, Check
>>> MAX_NAME = 40
>>> Name = Annotated[str, Length(1, MAX_NAME)]
>>> m = Model("shop")
>>> @m.command("Register")
... class Register(Command):
...     name: Name
...     email: Email
...     age: Annotated[int, Range(ge=18, le=130)]
...     code: Annotated[str, Check(str.isupper, "must be upper case")]
>>> try:
...     Register(name="", email="nope", age=12, code="ab")
... except Exception as e:
...     print(type(e).__name__, [err.field for err in e.errors])
ValidationError ['name', 'email', 'age', 'code']
"""

import re
from collections.abc import Callable
from typing import Annotated, Any

import annotated_types
from pydantic import AfterValidator, EmailStr, StringConstraints

__all__ = ["Email", "NonBlank", "Check", "Length", "Pattern", "Range"]

#: An e-mail address (validated by the ``email-validator`` package).
Email = EmailStr

#: A string with at least one non-space character (surrounding spaces are stripped).
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def Length(min: int | None = None, max: int | None = None) -> annotated_types.Len:
    """Length bounds (inclusive) of a string or collection.

    Examples
    --------
    >>> Length(3, 20)
    Len(min_length=3, max_length=20)
    """
    return annotated_types.Len(min or 0, max)


def Range(
    *, ge: Any = None, gt: Any = None, le: Any = None, lt: Any = None
) -> annotated_types.Interval:
    """Numeric bounds: ``ge``/``gt`` below, ``le``/``lt`` above.

    Examples
    --------
    >>> Range(gt=0, le=100)
    Interval(gt=0, ge=None, lt=None, le=100)
    """
    return annotated_types.Interval(gt=gt, ge=ge, lt=lt, le=le)


def Pattern(regex: str, message: str | None = None) -> Any:
    """The whole string must match ``regex``; ``message`` replaces pydantic's wording.

    Examples
    --------
    >>> from pydantic import TypeAdapter
    >>> from typing import Annotated
    >>> TypeAdapter(Annotated[str, Pattern(r"acc-[0-9]+")]).validate_python("acc-7")
    'acc-7'
    """
    compiled = re.compile(regex)
    text = message or f"must match the pattern {regex!r}"

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(text)
        return value

    return AfterValidator(check)


def Check(predicate: Callable[[Any], bool], message: str) -> Any:
    """A custom rule: ``predicate(value)`` must be true, else the field fails with ``message``.

    Examples
    --------
    >>> from pydantic import TypeAdapter
    >>> from typing import Annotated
    >>> Even = Annotated[int, Check(lambda v: v % 2 == 0, "must be even")]
    >>> TypeAdapter(Even).validate_python(4)
    4
    """

    def check(value: Any) -> Any:
        if not predicate(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)
