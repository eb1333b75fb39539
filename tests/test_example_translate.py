"""The date-translation demo: its quick run reaches its bar, and its inputs are checked."""

from __future__ import annotations

import pytest

from rnnkit.examples import demos
from rnnkit.examples import translate as demo


def test_quick_run_reaches_its_bar(tmp_path):
    plot = tmp_path / "attention.png"
    result = demo.main(["--quick", "--seed", "0", "--plot", str(plot)])
    # the quick bar (see the module docstring), set with margin below what the quick run reaches
    assert result["exact_greedy"] >= 0.75
    assert result["bleu_greedy"] >= 90.0
    assert result["exact_beam"] >= 0.75 and result["bleu_beam"] >= 90.0
    # far above the baselines, which never get a date right
    assert result["baseline_exact_copy"] == 0.0 and result["baseline_bleu_copy"] < 10.0
    assert result["baseline_bleu_frequent"] < 10.0 and result["baseline_exact_frequent"] < 0.01
    assert abs(result["sacrebleu_greedy"] - result["bleu_greedy"]) < 0.01    # rnnkit's BLEU is sacreBLEU's
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "translate" in demos()


def test_character_table_rejects_unknown_characters():
    table = demo.CharTable("0123 abc", reserve_padding=True)
    ids = table.encode(["ab 1", "c"])
    assert ids.shape == (2, 4) and ids[1, 1:].tolist() == [0, 0, 0]          # 0 pads on the right
    assert table.decode(ids[0].tolist()) == "ab 1"
    with pytest.raises(ValueError, match="never saw: 'é☃'"):
        table.encode(["abc", "ab 3 ☃é"])
    with pytest.raises(TypeError, match="list of strings"):
        table.encode("abc")


@pytest.mark.parametrize("argv", [["--beam-width", "0"], ["--epochs", "0"], ["--plot", "attention.pdf"]])
def test_bad_options_stop_before_training(argv, capsys):
    with pytest.raises(SystemExit):
        demo.main(["--quick", *argv])
    assert "Training" not in capsys.readouterr().out
