"""The README's rnnkit examples run as written (the Keras original, which needs TensorFlow, is skipped
by selection: only blocks that import rnnkit are run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if "rnnkit" in b]


def test_readme_has_rnnkit_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    exec(compile(BLOCKS[index], f"README block {index}", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    if "validation accuracy" in BLOCKS[index]:
        assert float(out.strip().split()[-1]) >= 0.8
    if "tagging accuracy" in BLOCKS[index]:
        assert float(out.strip().split()[-1]) >= 0.9
    if "generated_text" in BLOCKS[index]:
        assert out.strip().splitlines()[-1].startswith("This is G")
