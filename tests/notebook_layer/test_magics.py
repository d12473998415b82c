"""%load_ext allframe_lab in a real IPython shell: formatters, magics, plain reprs kept."""

from __future__ import annotations

from allframe_lab.errors import FieldError, ValidationError


def _fmt(shell, obj):
    data, _ = shell.display_formatter.format(obj)
    return data


def test_load_ext_registers_rich_formatters_and_keeps_plain_reprs(shell, bank_app) -> None:
    model = bank_app.model
    plain_before = repr(model)
    assert set(_fmt(shell, model)) == {"text/plain"}  # nothing rich before %load_ext
    shell.run_line_magic("load_ext", "allframe_lab")
    assert repr(model) == plain_before  # the class is untouched

    data = _fmt(shell, model)
    assert set(data) == {"text/html", "text/plain"}
    for name in [*model.events, *model.commands, *model.aggregates, *model.projections]:
        assert f"<td>{name}</td>" in data["text/html"]
        assert name in data["text/plain"]

    agg = bank_app.load("Account", "a1")
    data = _fmt(shell, agg)
    assert "Account (stream 'a1', version 3)" in data["text/plain"]
    assert f"<td>{agg.balance}</td>" in data["text/html"]

    data = _fmt(shell, bank_app.projection("balances"))
    head = bank_app.store.head_position
    assert f"checkpoint {head} of head position {head}" in data["text/plain"]
    assert "<table" in data["text/html"] and "bob" in data["text/html"]

    data = _fmt(shell, bank_app.store)
    assert data["text/plain"].startswith(f"InMemoryEventStore: {head} events in 2 streams")
    assert "app" not in data  # sanity: plain dict of MIME types
    assert "text/html" in _fmt(shell, bank_app)

    err = ValidationError("Deposit", [FieldError("amount", "must be > 0", -5),
                                      FieldError("account_id", "field required")])
    data = _fmt(shell, err)
    assert data["text/html"].count("<tr>") == 3  # header + one row per error
    assert "account_id" in data["text/plain"] and "must be > 0" in data["text/plain"]

    shell.run_line_magic("unload_ext", "allframe_lab")
    assert set(_fmt(shell, model)) == {"text/plain"}


def test_raised_validation_error_shows_its_table(shell, capsys) -> None:
    shell.run_line_magic("load_ext", "allframe_lab")
    shell.user_ns.update(ValidationError=ValidationError, FieldError=FieldError)
    shell.run_cell("raise ValidationError('Deposit', [FieldError('amount', 'must be > 0', -1),"
                   " FieldError('account_id', 'field required')])")
    out = capsys.readouterr().out
    assert "Deposit is invalid (2 errors)" in out
    assert "amount      must be > 0" in out and "account_id  field required" in out


def test_magics(shell, bank_app) -> None:
    shell.run_line_magic("load_ext", "allframe_lab")
    shell.user_ns["app"] = bank_app
    flow = shell.run_line_magic("allframe_flow", "app")
    assert "command/Deposit -> aggregate/Account" in flow.data["text/plain"]
    df = shell.run_cell_magic("allframe_sql", "app",
                              "SELECT stream_id, count(*) AS n FROM events GROUP BY 1 ORDER BY 1")
    assert df.values.tolist() == [["a1", 3], ["b2", 2]]
    df = shell.run_cell_magic("allframe_sql", "", "SELECT count(*) AS n FROM events")
    assert int(df.n[0]) == bank_app.store.head_position
    state = shell.run_line_magic("allframe", "")
    assert state.payload["stores"][0]["key"] == "app"
