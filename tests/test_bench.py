"""The benchmark suite runs and writes its JSON (a smoke test: no timing is asserted here)."""

from __future__ import annotations

import json

from rnnkit.bench import SHAPES, Shape, main


def test_flops_formula_matches_benchmarks_md():
    s = Shape("x", "lstm", B=2, T=3, D=5, H=7)
    assert s.flops(True) == 6 * 2 * 3 * 4 * 7 * (5 + 7)
    bi = Shape("y", "gru", B=2, T=3, D=5, H=7, layers=2, bidirectional=True)
    assert bi.flops(False) == 2 * (2 * 2 * 3 * 3 * 7 * (5 + 7) + 2 * 2 * 3 * 3 * 7 * (14 + 7))
    assert {s.name for s in SHAPES} >= {"tiny-tanh", "small-lstm", "small-gru", "medium", "large-b16", "bilstm"}


def test_bench_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert main(["--only", "stream", "tiny-relu", "--pairs", "1", "--no-keras", "--no-memory",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    modes = {(r["shape"], r["mode"]) for r in result["rows"]}
    assert modes == {("tiny-relu", "train"), ("tiny-relu", "predict"), ("stream", "stream")}
    assert result["peak_gflops"] > 0 and all(r["ratio"] > 0 for r in result["rows"])
    assert "peer/rnnkit" in capsys.readouterr().out
