"""Data-parallel training (rnnkit.distributed) and gradient accumulation (fit's steps_per_update).

The multi-rank tests start real MPI jobs (``mpiexec -n 2`` and ``-n 4`` on this machine, MPICH from
the test extras) running tests/mpi_worker.py, and compare rank 0's weights and logs after several
epochs with one process training on the same global batches: equal within 1e-12 in float64. Every
job runs under a timeout, so a rank left waiting fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import distributed, layers
from rnnkit.errors import DistributedError

sys.path.insert(0, str(Path(__file__).parent))
import distributed_cases  # noqa: E402

WORKER = Path(__file__).parent / "mpi_worker.py"
TIMEOUT = 240


def _mpiexec() -> str:
    """The mpiexec of the MPI that mpi4py uses (the test extras install MPICH beside this Python)."""
    beside = Path(sysconfig.get_path("scripts")) / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    assert found, "mpiexec not found: install the test extras (pip install -e '.[test]'), which bring MPICH"
    return found


def _job(ranks: int, scenario: str, out: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(rnnkit.__file__).parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, str(WORKER), scenario, str(out)],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _reports(out: Path, ranks: int) -> list[str]:
    return [(out / f"rank{r}.txt").read_text() for r in range(ranks)]


def _max_difference(a: list, b: list) -> float:
    assert len(a) == len(b)
    return max(float(np.max(np.abs(p - q))) for p, q in zip(a, b))


# -- the ranks equal one process ------------------------------------------------------------------
@pytest.fixture(scope="module", params=[2, 4])
def trained(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"ranks{request.param}")
    _job(request.param, "train", out)
    return out


@pytest.mark.parametrize("case", sorted(distributed_cases.CASES))
def test_ranks_equal_one_process(trained, case, float64):
    model, x, y, kwargs = distributed_cases.build(case)
    history = model.fit(x, y, verbose=0, **kwargs)
    saved = np.load(trained / f"{case}.npz")
    ranks_weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    assert _max_difference(ranks_weights, model.get_weights()) < 1e-12
    assert not np.array_equal(ranks_weights[0], distributed_cases.build(case)[0].get_weights()[0])   # it trained
    logged = json.loads((trained / f"{case}.json").read_text())
    assert sorted(logged) == sorted(history.history)
    for key, values in history.history.items():
        np.testing.assert_allclose(logged[key], values, rtol=1e-12, atol=1e-14, err_msg=key)


def test_accumulation_on_ranks_equals_one_bigger_batch(float64):
    """The `accumulated` case (2 x 10 per update) is one process's batch of 20, exactly."""
    model, x, y, kwargs = distributed_cases.build("accumulated")
    first = model.get_weights()
    model.fit(x, y, verbose=0, **kwargs)
    other, _, _, _ = distributed_cases.build("accumulated")
    other.set_weights(first)
    other.fit(x, y, verbose=0, batch_size=20, epochs=kwargs["epochs"])
    assert _max_difference(model.get_weights(), other.get_weights()) < 1e-12


# -- gradient accumulation on one process ---------------------------------------------------------
def _pair(make, steps_per_update: int, small: int, x, y, **fit):
    a = make()
    start = a.get_weights()
    ha = a.fit(x, y, batch_size=small * steps_per_update, verbose=0, **fit)
    b = make()
    b.set_weights(start)
    hb = b.fit(x, y, batch_size=small, steps_per_update=steps_per_update, verbose=0, **fit)
    return a, b, ha, hb


def test_steps_per_update_equals_the_bigger_batch(float64):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(50, 6, 3)), rng.integers(0, 3, size=50)

    def make():
        m = rnnkit.Sequential([rnnkit.Input((6, 3)), layers.GRU(6), layers.Dense(3, activation="softmax")],
                              seed=11)      # the same shuffling in both
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return m

    a, b, ha, hb = _pair(make, 3, 7, x, y, epochs=3, validation_split=0.2)
    assert _max_difference(a.get_weights(), b.get_weights()) < 1e-12
    for key in ha.history:
        if key.startswith("val_"):      # validation runs in batches of batch_size: 21 against 7
            np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-12)
        else:
            np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-12, err_msg=key)
    assert len(hb.grad_norms) == len(ha.grad_norms) == 3 * 2     # one norm per update: 40 samples / 21


def test_steps_per_update_weights_masked_positions(float64):
    """Micro-batches with very different numbers of unmasked positions: weighted by positions, the update
    is the big batch's; weighted by samples it would not be."""
    rng = np.random.default_rng(6)
    x = rng.integers(1, 9, size=(24, 8))
    x[:12, 2:] = 0                              # the first micro-batches are mostly padding
    y = rng.integers(0, 2, size=(24, 8))

    def make():
        m = rnnkit.Sequential([rnnkit.Input((8,), dtype="int32"), layers.Embedding(9, 3, mask_zero=True),
                               layers.LSTM(4, return_sequences=True), layers.Dense(2, activation="softmax")])
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        return m

    a, b, ha, hb = _pair(make, 4, 6, x, y, epochs=2, shuffle=False)
    assert _max_difference(a.get_weights(), b.get_weights()) < 1e-12
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-12)


def test_steps_per_update_refuses_masked_losses_of_several_outputs(float64):
    inp = rnnkit.Input((5,), dtype="int32")
    h = layers.LSTM(3, return_sequences=True)(layers.Embedding(6, 2, mask_zero=True)(inp))
    model = rnnkit.Model(inp, [layers.Dense(2, activation="softmax")(h), layers.Dense(1)(h)])
    model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"])
    before = model.get_weights()
    x = np.array([[1, 2, 0, 0, 0]] * 4)
    with pytest.raises(ValueError, match="masked loss while the model has several outputs"):
        model.fit(x, [np.zeros((4, 5)), np.zeros((4, 5, 1))], batch_size=2, steps_per_update=2, verbose=0)
    assert _max_difference(before, model.get_weights()) == 0.0
    model.fit(x, [np.zeros((4, 5)), np.zeros((4, 5, 1))], batch_size=2, verbose=0)     # one process, k=1: fine


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_steps_per_update_is_checked(bad):
    model = rnnkit.Sequential([rnnkit.Input((3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises((ValueError, TypeError), match="steps_per_update"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 1)), steps_per_update=bad, verbose=0)


# -- one process with distributed=True ------------------------------------------------------------
def test_distributed_on_one_process_is_plain_fit(float64):
    model, x, y, kwargs = distributed_cases.build("masked_tagger")
    start = model.get_weights()
    h1 = model.fit(x, y, verbose=0, distributed=True, **kwargs)
    other = distributed_cases.build("masked_tagger")[0]
    other.set_weights(start)
    h2 = other.fit(x, y, verbose=0, **kwargs)
    assert _max_difference(model.get_weights(), other.get_weights()) < 1e-12
    np.testing.assert_allclose(h1.history["val_loss"], h2.history["val_loss"], rtol=1e-12)
    assert distributed.size() == 1 and distributed.rank() == 0 and distributed.is_primary()


@pytest.mark.parametrize("bad", ["yes", 1, None.__class__])
def test_distributed_argument_is_checked(bad):
    model = rnnkit.Sequential([rnnkit.Input((3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(TypeError, match="distributed must be True, False or a rnnkit.distributed.DataParallel"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 1)), distributed=bad, verbose=0)


@pytest.mark.parametrize("kwargs, match", [({"batch_size": "local"}, "'global' or 'per_rank'"),
                                           ({"scale_learning_rate": 1}, "must be a bool"),
                                           ({"warmup_epochs": -1}, "number >= 0"),
                                           ({"warmup_epochs": float("nan")}, "number >= 0")])
def test_data_parallel_options_are_checked(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        distributed.DataParallel(**kwargs)


def test_without_mpi4py_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)            # import mpi4py now raises ImportError
    monkeypatch.setattr(distributed, "_comm", None)
    model = rnnkit.Sequential([rnnkit.Input((3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    before = model.get_weights()
    with pytest.raises(ImportError, match=r'pip install "rnnkit\[mpi\]"'):
        model.fit(np.zeros((4, 3)), np.ones((4, 1)), distributed=True, verbose=0)
    assert _max_difference(before, model.get_weights()) == 0.0 and model.optimizer.iterations == 0


# -- failures on some ranks -----------------------------------------------------------------------
def test_a_rank_failing_in_a_step_stops_every_rank(tmp_path):
    _job(2, "raise_in_step", tmp_path)
    rank0, rank1 = _reports(tmp_path, 2)
    assert rank1 == "ValueError: injected failure on rank 1"
    assert rank0.startswith("DistributedError ranks=[1]: Training stopped on every rank because rank 1 failed")
    assert "injected failure on rank 1" in rank0


def test_a_rank_failing_between_steps_ends_the_job(tmp_path):
    start = time.monotonic()
    done = _job(2, "raise_in_callback", tmp_path, check=False)
    assert done.returncode != 0
    assert "injected callback failure on rank 0" in done.stderr
    assert not list(tmp_path.glob("rank*.txt"))                  # no rank went on to finish
    assert time.monotonic() - start < TIMEOUT / 2


def test_a_rank_refusing_its_arguments_stops_every_rank(tmp_path):
    _job(2, "one_rank_refuses", tmp_path)
    rank0, rank1 = _reports(tmp_path, 2)
    assert rank1 == "ValueError: x and y must have the same number of samples, got 45 and 44."
    assert rank0.startswith("DistributedError ranks=[1]:") and "got 45 and 44" in rank0


def test_ranks_given_different_arguments_all_refuse(tmp_path):
    _job(2, "different_arguments", tmp_path)
    for text in _reports(tmp_path, 2):
        assert text.startswith("DistributedError ranks=[]: The ranks called fit differently") and "[[0], [1]]" in text


def test_a_batch_smaller_than_the_ranks_is_refused_on_every_rank(tmp_path):
    _job(2, "small_batch", tmp_path)
    for text in _reports(tmp_path, 2):
        assert text == ("ValueError: batch_size=1 is the global batch, split between the 2 ranks, so 1 of them "
                        "would never get a sample; use batch_size >= 2, or DataParallel(batch_size='per_rank') to "
                        "give each rank 1.")


def test_stateful_models_are_refused_on_every_rank(tmp_path):
    _job(2, "stateful", tmp_path)
    for text in _reports(tmp_path, 2):
        assert text.startswith("ValueError: Stateful layer(s) ['lstm']") and "distributed=True" in text


# -- rank 0's duties ------------------------------------------------------------------------------
def test_rank_zero_prints_and_writes_files(tmp_path):
    done = _job(2, "checkpoints", tmp_path)
    assert done.stdout.count("Epoch 1/3") == 1                      # one progress output, not one per rank
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-1.safetensors", "ckpt-2.safetensors",
                                                               "ckpt-3.safetensors"]
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("epoch,")           # header + 3 epochs, written once
    assert rnnkit.load_model(tmp_path / "ckpt-3.safetensors").count_params() > 0


def test_learning_rate_scaling_and_warmup(tmp_path, float64):
    _job(2, "learning_rate", tmp_path)
    rates = [json.loads(t) for t in _reports(tmp_path, 2)]
    assert rates[0] == rates[1]
    base = 0.001                                                    # Adam's default; 45 samples / 16 = 3 steps
    np.testing.assert_allclose(rates[0], [base * 4 / 3, base * 5 / 3, 2 * base, 2 * base, 2 * base, 2 * base],
                               rtol=1e-15)
    # one process, batches of 2 x 8, the same rates step by step: the same weights
    model, x, y, _ = distributed_cases.build("lstm_uneven")
    steps = iter(rates[0])

    class Apply(rnnkit.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.model.optimizer.learning_rate = next(steps)

    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, callbacks=[Apply()])
    saved = np.load(tmp_path / "result.npz")
    assert _max_difference([saved[f"arr_{i}"] for i in range(len(saved.files))], model.get_weights()) < 1e-12


def test_sharding_is_contiguous_and_covers_the_batch():
    from rnnkit.models.data_parallel import shard

    for m in range(0, 30):
        for size in (1, 2, 3, 4, 7):
            parts = [shard(m, size, r) for r in range(size)]
            assert [p.start for p in parts[1:]] == [p.stop for p in parts[:-1]]
            assert parts[0].start == 0 and parts[-1].stop == m
            lengths = [p.stop - p.start for p in parts]
            assert max(lengths) - min(lengths) <= 1


def test_distributed_error_is_an_rnnkit_error():
    assert issubclass(DistributedError, rnnkit.RnnkitError) and issubclass(DistributedError, RuntimeError)


# -- the example script and the launch environment ------------------------------------------------
def test_example_script_gives_the_same_result_on_one_and_two_ranks(tmp_path):
    script = Path(__file__).parents[1] / "examples" / "train_distributed.py"
    env = dict(os.environ, PYTHONPATH=str(Path(rnnkit.__file__).parents[1]))
    finals = []
    for ranks, command in ((1, [sys.executable]), (2, [_mpiexec(), "-n", "2", sys.executable])):
        done = subprocess.run([*command, str(script), "--float64", "--epochs", "2"], capture_output=True, text=True,
                              timeout=TIMEOUT, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        last = done.stdout.strip().splitlines()[-1]
        assert done.stdout.count("Epoch 1/2") == 1                   # rank 0 alone prints
        finals.append(last.split("final training loss ")[1])
        assert last.startswith(f"{ranks} rank(s):")
    assert finals[0] == finals[1]


def test_ranks_on_one_machine_share_its_cores_by_default():
    code = "import rnnkit, os; print(rnnkit.kernels_info()['threads'], len(os.sched_getaffinity(0)))"
    env = {k: v for k, v in os.environ.items() if k not in ("RNNKIT_NUM_THREADS", "MPI_LOCALNRANKS")}
    alone = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    shared = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env=dict(env, MPI_LOCALNRANKS="2"))
    threads, cpus = map(int, alone.stdout.split())
    assert threads == cpus
    assert int(shared.stdout.split()[0]) == max(1, cpus // 2)


def test_backup_and_restore_resumes_every_rank(tmp_path, float64, monkeypatch):
    """A job killed after epoch 2 of 4 and started again ends where an uninterrupted single process does."""
    monkeypatch.setenv("RNNKIT_TEST_CRASH", "1")
    crashed = _job(2, "resume", tmp_path, check=False)
    assert crashed.returncode != 0 and (tmp_path / "backup" / "latest.safetensors").exists()
    assert not (tmp_path / "result.npz").exists()
    monkeypatch.delenv("RNNKIT_TEST_CRASH")
    _job(2, "resume", tmp_path)
    assert not (tmp_path / "backup").exists()                      # deleted by rank 0 at the end
    model, x, y, kwargs = distributed_cases.build("lstm_uneven")
    kwargs.update(epochs=4, validation_split=0.0)
    model.fit(x, y, verbose=0, **kwargs)
    saved = np.load(tmp_path / "result.npz")
    assert _max_difference([saved[f"arr_{i}"] for i in range(len(saved.files))], model.get_weights()) < 1e-12
