"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    # dont_inherit: this test module's `from __future__ import annotations` must not leak in
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec", dont_inherit=True), namespace)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 2
