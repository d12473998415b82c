"""House rules: the arrow of imports, a cheap import, an honest public API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import allframe_lab

ROOT = Path(__file__).resolve().parents[1]


def test_layers_contract_holds() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    res = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 kept, 0 broken" in res.stdout


def test_import_is_cheap() -> None:
    code = ("import sys, time, json; t = time.perf_counter(); import allframe_lab; "
            "dt = time.perf_counter() - t; heavy = ['duckdb', 'pandas', 'pyarrow', 'IPython', "
            "'ipywidgets', 'tqdm', 'click']; "
            "print(json.dumps({'s': dt, 'loaded': [m for m in heavy if m in sys.modules]}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    out = json.loads(res.stdout)
    assert out["loaded"] == []
    assert out["s"] < 1.0


def test_all_is_sorted_and_honest() -> None:
    names = allframe_lab.__all__
    assert sorted(names, key=lambda n: (not n.isupper(), n)) == names  # constants first
    for name in names:
        assert getattr(allframe_lab, name) is not None


def test_errors_mix_in_builtins() -> None:
    from allframe_lab import errors

    assert issubclass(errors.ConcurrencyError, RuntimeError)
    assert issubclass(errors.ImportFormatError, ValueError)
    assert issubclass(errors.UnknownNameError, KeyError)
    for name in errors.__all__:
        cls = getattr(errors, name)
        if name == "FieldError":  # the record a ValidationError carries, not an exception
            continue
        assert issubclass(cls, (errors.AllframeError, Warning))
