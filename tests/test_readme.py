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
def test_readme_example_runs(index, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                      # examples that save files write them here
    exec(compile(BLOCKS[index], f"README block {index}", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    if "validation accuracy" in BLOCKS[index]:
        assert float(out.strip().split()[-1]) >= 0.8
    if "tagging accuracy" in BLOCKS[index]:
        assert float(out.strip().split()[-1]) >= 0.9
    if "decoded exactly" in BLOCKS[index]:             # the seq2seq example: most training pairs come back
        exact, total = map(int, out.strip().splitlines()[-1].split()[-1].split("/"))
        assert exact >= 0.3 * total
    if "check_gradients" in BLOCKS[index]:
        assert float(out.strip().splitlines()[-1].split()[-1]) < 1e-6
    if "held-out accuracy" in BLOCKS[index]:           # the sentiment example: above chance on held-out pairs
        assert float(out.strip().splitlines()[-1].split()[-1]) >= 0.65
    if "training bits per character" in BLOCKS[index]:  # the language model learned more than character counts
        assert float(out.strip().splitlines()[-1].split()[-1]) < 3.6
    if "ctc_decode" in BLOCKS[index]:
        assert out.strip().splitlines()[-1] == "(1, 4, 20) (4, 1)"
    if "generated_text" in BLOCKS[index]:
        assert out.strip().splitlines()[-1].startswith("This is G")
