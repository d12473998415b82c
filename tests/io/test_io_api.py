"""The public surface of allframe_lab.io: a sorted, honest ``__all__`` with documented names."""

from __future__ import annotations

import allframe_lab.io as io_pkg


def test_all_is_sorted_and_importable() -> None:
    assert list(io_pkg.__all__) == sorted(io_pkg.__all__)
    for name in io_pkg.__all__:
        assert hasattr(io_pkg, name), name
    required = {"import_log", "read_log", "ImportResult", "LogMapping", "process_log_model",
                "dataset_path", "DATASETS"}
    assert required <= set(io_pkg.__all__)


def test_public_names_have_docstrings_with_examples() -> None:
    for name in ("import_log", "read_log", "LogMapping", "process_log_model", "dataset_path",
                 "iter_xes", "iter_xes_traces", "detect_format"):
        doc = getattr(io_pkg, name).__doc__ or ""
        assert "Examples" in doc and ">>>" in doc, name
    assert (io_pkg.ImportResult.__doc__ or "").strip()
