"""The command form: an input form generated from a command's JSON Schema.

:class:`CommandForm` is an `anywidget <https://anywidget.dev>`_. It reads
``model.commands[name].model_json_schema()``, shows one input per field with its type and
constraints, and on submit dispatches the values through the App (``app.dispatch(name,
payload)``). Every validation error is shown next to its field, a refusal by a business rule
(:class:`~allframe_lab.errors.DomainError`) at the top, and on success the recorded events.

Its state is kernel-side traitlets (``values``, ``errors``, ``recorded``, ``status``), and
:meth:`CommandForm.submit` does what the browser's submit button does, so it is testable
without a browser.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import anywidget
    import traitlets
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the command form needs anywidget and ipywidgets: pip install 'allframe-lab[notebook]'"
    ) from exc

from allframe_lab.errors import AllframeError, DomainError, FieldError, ValidationError
from allframe_lab.notebook.time_travel import jsonable

if TYPE_CHECKING:  # pragma: no cover
    from allframe_lab.runtime import App
    from allframe_lab.store import RecordedEvent

__all__ = ["CommandForm", "dispatch_command", "errors_by_field", "form_fields"]

_STATIC = Path(__file__).resolve().parent / "static"

#: Where an error that belongs to no field (a model-level check) is filed in ``errors``.
ROOT_FIELD = "__root__"

_FORMATS = {"email": "email", "date-time": "datetime-local", "date": "date", "time": "time",
            "uri": "url"}
_CONSTRAINTS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf",
                "minLength", "maxLength", "pattern", "format", "minItems", "maxItems")


def _resolve(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Follow ``$ref`` and unwrap ``anyOf: [X, null]``; return (schema, nullable)."""
    nullable = False
    prop = dict(prop)
    options = prop.get("anyOf")
    if options:
        rest = [o for o in options if o.get("type") != "null"]
        nullable = len(rest) < len(options)
        if len(rest) == 1:
            merged = {k: v for k, v in prop.items() if k != "anyOf"}
            merged.update(rest[0])
            prop = merged
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = dict(defs.get(ref.split("/")[-1], {}))
        target.update({k: v for k, v in prop.items() if k != "$ref"})
        prop = target
    return prop, nullable


def form_fields(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One form field per property of a command's JSON Schema.

    Parameters
    ----------
    schema : mapping
        A JSON Schema object, as ``Command.model_json_schema()`` returns it.

    Returns
    -------
    list of dict
        In property order, each with ``name``, ``title``, ``description``, ``kind``
        (``"integer"``, ``"number"``, ``"boolean"``, ``"string"``, ``"enum"`` or ``"json"``
        for arrays, objects and unions), ``input`` (the HTML input type), ``required``,
        ``nullable``, ``default`` (if any), ``options`` (for enums) and ``constraints``
        (the JSON Schema keywords ``minimum``, ``maxLength``, ``pattern`` ...).

    Examples
    --------
    >>> from pydantic import Field
    >>> from allframe_lab import Command
    >>> class Deposit(Command):
    ...     account_id: str
    ...     amount: int = Field(gt=0, le=1000)
    ...     note: str | None = None
    >>> [(f["name"], f["kind"], f["required"], f["constraints"])
    ...  for f in form_fields(Deposit.model_json_schema())]
    [('account_id', 'string', True, {}), ('amount', 'integer', True, {'exclusiveMinimum': 0, \
'maximum': 1000}), ('note', 'string', False, {})]
    """
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    out = []
    for name, raw in schema.get("properties", {}).items():
        prop, nullable = _resolve(raw, defs)
        kind = prop.get("type")
        if "enum" in prop:
            kind = "enum"
        elif "const" in prop:
            kind, prop = "enum", {**prop, "enum": [prop["const"]]}
        elif kind not in ("integer", "number", "boolean", "string"):
            kind = "json"
        fmt = prop.get("format")
        html = {"integer": "number", "number": "number", "boolean": "checkbox",
                "string": _FORMATS.get(fmt, "text") if fmt else "text"}.get(kind, "text")
        field: dict[str, Any] = {
            "name": name,
            "title": prop.get("title") or name,
            "description": prop.get("description", ""),
            "kind": kind,
            "input": html,
            "required": name in required,
            "nullable": nullable,
            "constraints": {k: prop[k] for k in _CONSTRAINTS if k in prop},
        }
        if "default" in raw or "default" in prop:
            field["default"] = jsonable(raw.get("default", prop.get("default")))
        if kind == "enum":
            field["options"] = jsonable(list(prop["enum"]))
        out.append(field)
    return out


def dispatch_command(app: App, name: str, payload: Mapping[str, Any]) -> list[RecordedEvent]:
    """Validate ``payload`` as the command ``name`` and run it through the App.

    Uses ``app.dispatch(name, payload)`` (the command bus); an App without a bus validates
    with the command class and calls ``app.handle``.

    Raises
    ------
    ValidationError
        With every failed field in ``.errors``.
    DomainError
        If a business rule refuses the command.
    """
    dispatch = getattr(app, "dispatch", None)
    if dispatch is not None:
        return dispatch(name, dict(payload))
    import pydantic  # pragma: no cover - only for an App without a command bus

    cls = app.model.commands[name]  # pragma: no cover
    try:  # pragma: no cover
        command = cls.model_validate(dict(payload))
    except pydantic.ValidationError as exc:  # pragma: no cover
        raise ValidationError(name, [
            FieldError(".".join(str(p) for p in e.get("loc", ())) or ROOT_FIELD,
                       e.get("msg", "invalid"), e.get("input"))
            for e in exc.errors(include_url=False)]) from None
    return app.handle(command)  # pragma: no cover


def errors_by_field(errors: Sequence[FieldError]) -> dict[str, str]:
    """``{field: message}`` from FieldErrors; several messages of a field are joined by "; ".

    Examples
    --------
    >>> errors_by_field([FieldError("amount", "must be > 0", -1),
    ...                  FieldError("amount", "must be even", -1), FieldError("id", "missing")])
    {'amount': 'must be > 0; must be even', 'id': 'missing'}
    """
    out: dict[str, str] = {}
    for e in errors:
        field = e.field or ROOT_FIELD
        out[field] = f"{out[field]}; {e.message}" if field in out else e.message
    return out


class CommandForm(anywidget.AnyWidget):
    """A form for one command, generated from its JSON Schema, that dispatches through the App.

    Parameters
    ----------
    app : App
        The App that runs the command (``app.dispatch``).
    command_name : str
        A command declared on ``app.model``.
    values : mapping, optional
        Initial field values.

    Attributes
    ----------
    fields : list of dict
        The form's fields (see :func:`form_fields`).
    values : dict
        The field values to submit (the browser sets them on submit). Empty strings and
        ``None`` count as "not given".
    errors : dict
        ``{field: message}`` of the last submission; dotted paths for nested fields
        (``lines.0.qty``), ``"__root__"`` for model-level checks.
    form_error : str
        The refusal shown at the top: a DomainError's message (or another allframe error).
    recorded : list of dict
        The events the last successful submission recorded: ``position``, ``stream_id``,
        ``version``, ``type``, ``data``, ``occurred_at``.
    status : str
        ``"new"``, ``"recorded"``, ``"invalid"``, ``"refused"`` or ``"failed"``.
    submissions : int
        How many submissions were handled.

    Raises
    ------
    UnknownNameError
        If ``command_name`` is not declared on the model.

    Examples
    --------
    >>> from allframe_lab import App, Command, Event, Aggregate, Model, applies, handles
    >>> from allframe_lab.store import InMemoryEventStore
    >>> m = Model("notes")
    >>> @m.event("Noted")
    ... class Noted(Event):
    ...     text: str
    >>> @m.command("Note", stream="note_id", creates=True)
    ... class Note(Command):
    ...     note_id: str
    ...     text: str
    >>> @m.aggregate("NoteA")
    ... class NoteA(Aggregate):
    ...     text: str = ""
    ...     @applies("Noted")
    ...     def _noted(self, e):
    ...         self.text = e.text
    ...     @handles("Note")
    ...     def note(self, c):
    ...         return Noted(text=c.text)
    >>> form = CommandForm(App(m, InMemoryEventStore()), "Note")
    >>> form.values = {"note_id": "", "text": 3}
    >>> _ = form.submit()
    >>> form.status, sorted(form.errors)
    ('invalid', ['note_id', 'text'])
    >>> form.values = {"note_id": "n1", "text": "hello"}
    >>> [(r["position"], r["stream_id"], r["type"], r["data"]) for r in form.submit()]
    [(1, 'n1', 'Noted', {'text': 'hello'})]
    """

    _esm = _STATIC / "command_form.js"
    _css = _STATIC / "command_form.css"

    command = traitlets.Unicode("").tag(sync=True)
    description = traitlets.Unicode("").tag(sync=True)
    fields = traitlets.List().tag(sync=True)
    values = traitlets.Dict().tag(sync=True)
    errors = traitlets.Dict().tag(sync=True)
    form_error = traitlets.Unicode("").tag(sync=True)
    recorded = traitlets.List().tag(sync=True)
    status = traitlets.Unicode("new").tag(sync=True)
    submissions = traitlets.Int(0).tag(sync=True)

    def __init__(self, app: App, command_name: str, /, *,
                 values: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        cls = app.model.commands.get(command_name)
        if cls is None:
            from allframe_lab.errors import UnknownNameError

            raise UnknownNameError("command", command_name, app.model.commands)
        self._app = app
        schema = cls.model_json_schema()
        super().__init__(command=command_name, fields=form_fields(schema),
                         description=(schema.get("description") or "").strip(),
                         values=dict(values or {}), **kwargs)
        self.on_msg(self._on_frontend_msg)

    @property
    def app(self) -> App:
        """The App the form dispatches through."""
        return self._app

    def payload(self) -> dict[str, Any]:
        """The values as the command payload: blanks dropped, JSON fields parsed."""
        kinds = {f["name"]: f["kind"] for f in self.fields}
        out: dict[str, Any] = {}
        for name, value in self.values.items():
            if value is None or value == "":
                continue
            if kinds.get(name) == "json" and isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass  # left as text: validation reports the field
            out[name] = value
        return out

    def submit(self) -> list[dict[str, Any]]:
        """Dispatch the current ``values``; update ``errors``, ``form_error``, ``recorded``.

        Validation errors, DomainErrors and other allframe errors are shown, not raised.

        Returns
        -------
        list of dict
            The recorded events (empty if the command was refused or invalid).
        """
        errors: dict[str, str] = {}
        form_error, status, recorded = "", "recorded", []
        try:
            events = dispatch_command(self._app, self.command, self.payload())
        except ValidationError as exc:
            errors, status = errors_by_field(exc.errors), "invalid"
            form_error = f"{exc.message_type} is invalid: {len(exc.errors)} error" + (
                "s" if len(exc.errors) != 1 else "")
        except DomainError as exc:
            form_error, status = str(exc), "refused"
        except AllframeError as exc:
            form_error, status = f"{type(exc).__name__}: {exc}", "failed"
        else:
            recorded = [{"position": r.position, "stream_id": r.stream_id, "version": r.version,
                         "type": r.type, "data": jsonable(r.data),
                         "occurred_at": jsonable(r.occurred_at)} for r in events]
        with self.hold_sync():
            self.errors = errors
            self.form_error = form_error
            self.status = status
            self.recorded = recorded
            self.submissions += 1
        return recorded

    def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "submit":
            values = content.get("values")
            if isinstance(values, dict):
                self.values = values
            self.submit()

    def __repr__(self) -> str:
        return (f"<CommandForm {self.command!r}: {len(self.fields)} fields, status "
                f"{self.status!r}, {len(self.errors)} errors, {len(self.recorded)} recorded>")
