"""The benchmark suite runs and writes its JSON (a smoke test: no timing is asserted here)."""

from __future__ import annotations

import json

import pytest

from rnnkit import bench
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


def test_more_shapes_of_benchmarks_md():
    by_name = {s.name: s for s in SHAPES}
    assert (by_name["gru-long"].cell, by_name["gru-long"].B, by_name["gru-long"].T, by_name["gru-long"].D,
            by_name["gru-long"].H) == ("gru", 16, 200, 100, 256)
    assert [(by_name[n].cell, by_name[n].B, by_name[n].T, by_name[n].D, by_name[n].H, by_name[n].K)
            for n in ("lstm-wide-batch", "lstm-small-batch")] == [("lstm", 128, 50, 32, 64, 10),
                                                                  ("lstm", 8, 30, 20, 32, 10)]


def test_pytorch_side_is_the_same_model():
    """The peer starts from the rnnkit model's weights: both predict the same (bidirectional included)."""
    import numpy as np
    import torch

    from rnnkit.bench import rnnkit_model, torch_model

    for s in (Shape("g", "gru", 3, 5, 4, 6), Shape("b", "lstm", 3, 5, 4, 6, layers=2, bidirectional=True)):
        model = rnnkit_model(s)
        rnn, head = torch_model(s, like=model)
        x = np.random.default_rng(1).standard_normal((s.B, s.T, s.D)).astype(np.float32)
        with torch.no_grad():
            out, _ = rnn(torch.from_numpy(x))
            last = torch.cat([out[:, -1, :s.H], out[:, 0, s.H:]], -1) if s.bidirectional else out[:, -1]
            peer = torch.softmax(head(last), -1).numpy()
        np.testing.assert_allclose(model.predict(x, verbose=0), peer, atol=1e-5)


def _one_rep(monkeypatch):
    """One call per timing: these tests check structure, not speed."""
    real = bench.paired
    monkeypatch.setattr(bench, "paired", lambda a, b, pairs, reps: real(a, b, pairs, 1))


def test_contended_mode_writes_slowdowns_and_stops_the_neighbour(tmp_path, capsys, monkeypatch):
    _one_rep(monkeypatch)
    started = []

    def start():
        proc = real_start()
        started.append(proc)
        assert proc.poll() is None                      # spinning while the contended pass runs
        return proc

    real_start = bench.start_neighbour
    monkeypatch.setattr(bench, "start_neighbour", start)
    out = tmp_path / "results.json"
    assert main(["--only", "lstm-small-batch", "--pairs", "1", "--no-keras", "--no-memory", "--contended",
                 "--json", str(out)]) == 0
    assert len(started) == 1 and started[0].poll() is not None   # the neighbour is gone
    result = json.loads(out.read_text())
    assert result["kernels"]["path"]
    assert [(r["shape"], r["mode"]) for r in result["rows"]] == [("lstm-small-batch", "train"),
                                                                 ("lstm-small-batch", "predict")]
    rows = result["contended"]
    assert [(r["shape"], r["mode"], r["peer"]) for r in rows] == [("lstm-small-batch", "train", "pytorch"),
                                                                  ("lstm-small-batch", "predict", "pytorch")]
    for r in rows:
        for key in ("rnnkit_slowdown", "peer_slowdown", "rnnkit_ms", "peer_ms", "ratio"):
            assert isinstance(r[key], float) and r[key] > 0
        assert r["rnnkit_worse"] == (r["rnnkit_slowdown"] > r["peer_slowdown"])
    assert result["neighbour"]["wall_s"] > 0
    text = capsys.readouterr().out
    assert "rnnkit kernels: path:" in text and "rnnkit slowdown" in text and "peer slowdown" in text


def test_neighbour_is_stopped_when_the_contended_pass_fails(tmp_path, monkeypatch):
    _one_rep(monkeypatch)
    started = []
    real_start, real_shape = bench.start_neighbour, bench.bench_shape
    monkeypatch.setattr(bench, "start_neighbour", lambda: started.append(real_start()) or started[-1])
    calls = []

    def shape_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:                              # the contended pass
            raise RuntimeError("boom")
        return real_shape(*args, **kwargs)

    monkeypatch.setattr(bench, "bench_shape", shape_then_fail)
    with pytest.raises(RuntimeError, match="boom"):
        main(["--only", "lstm-small-batch", "--pairs", "1", "--no-keras", "--no-memory", "--contended",
              "--json", str(tmp_path / "r.json")])
    assert len(started) == 1 and started[0].poll() is not None


def test_kernels_info_is_reported_when_present(monkeypatch):
    import rnnkit

    monkeypatch.delattr(rnnkit, "kernels_info", raising=False)
    assert bench.kernels_info() == {"path": "numpy"}
    monkeypatch.setattr(rnnkit, "kernels_info", lambda: {"path": "kernel", "isa": "avx2"}, raising=False)
    assert bench.kernels_info() == {"path": "kernel", "isa": "avx2"}
    assert bench.format_kernels(bench.kernels_info()) == "rnnkit kernels: path: kernel, isa: avx2"
