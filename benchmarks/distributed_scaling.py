"""Scaling of data-parallel training (``fit(distributed=...)``) on this machine, and on paper beyond it.

    python benchmarks/distributed_scaling.py [--repeats 3] [--steps 12] [--json out.json]

Trains the benchmark suite's *medium* shape (LSTM(320) on B=64, T=100, D=123, Dense(10) softmax,
Adam, float32) with ``DataParallel(batch_size="per_rank")``: every rank keeps a batch of 64, so the
global batch grows with the ranks (weak scaling, the way data-parallel jobs are run). It starts
``mpiexec -n P`` jobs for P = 1, 2 and 4 ranks of one kernel thread each, plus one process with
every core (plain ``fit``), alternating them ``--repeats`` times and quoting medians. Each job
reports its time per step (steps after two warm-up steps), the time rank 0 spent inside the
``Allreduce`` of the gradient buffer, and before it the time it waited at a barrier for the slowest
rank (load imbalance, a busy core), which would otherwise count as communication.

Then the ring-allreduce cost model (each rank sends and receives ``2 (P - 1) / P`` of the buffer,
in ``2 (P - 1)`` latency-bound steps) gives the expected efficiency at 8, 64 and 512 ranks on a
100 Gb/s network, from the measured compute time of a batch of 64 on one core and the gradient's
size. Efficiency = compute time / (compute time + allreduce time): rnnkit does not overlap the
allreduce with the backward pass, so nothing hides it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

B, T, D, H, CLASSES = 64, 100, 123, 320, 10


def _train(samples: int, **fit) -> tuple[object, list[float]]:
    """Train the medium model one epoch on ``samples`` random samples; returns it and each step's seconds."""
    import numpy as np

    import rnnkit
    from rnnkit import layers

    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, T, D)).astype(np.float32)
    y = rng.integers(0, CLASSES, size=samples)
    model = rnnkit.Sequential([rnnkit.Input((T, D)), layers.LSTM(H), layers.Dense(CLASSES, activation="softmax")],
                              seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    times: list[float] = []

    class Clock(rnnkit.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(x, y, batch_size=B, epochs=1, shuffle=False, verbose=0, callbacks=[Clock()], **fit)
    return model, times


def worker(steps: int) -> None:
    """One rank: time ``steps`` training steps of the medium shape; rank 0 prints a JSON line."""
    from rnnkit import distributed

    distributed.init()
    ranks = distributed.size()
    spent: list[float] = []
    waited: list[float] = []
    original = distributed.Collective.allreduce

    def timed(self, buffer):
        # a barrier first, so the time waiting for the slowest rank is not counted as communication
        start = time.perf_counter()
        if self.size > 1:
            self.comm.Barrier()
        middle = time.perf_counter()
        original(self, buffer)
        waited.append(middle - start)
        spent.append(time.perf_counter() - middle)

    distributed.Collective.allreduce = timed
    model, times = _train(B * ranks * (steps + 2), distributed=distributed.DataParallel(batch_size="per_rank"))
    if distributed.is_primary():
        grads = sum(w.size for w in model.trainable_weights)
        print(json.dumps({"ranks": ranks, "step_s": statistics.median(times[2:]),
                          "allreduce_s": statistics.median(spent[2:]) if spent else 0.0,
                          "wait_s": statistics.median(waited[2:]) if waited else 0.0,
                          "gradient_bytes": 4 * grads}), flush=True)


def single(steps: int) -> None:
    """Plain ``fit`` in one process with all its kernel threads: the baseline a user has today."""
    _, times = _train(B * (steps + 2))
    print(json.dumps({"ranks": 0, "step_s": statistics.median(times[2:]), "allreduce_s": 0.0, "wait_s": 0.0}),
          flush=True)


def _run(ranks: int, steps: int) -> dict:
    here = str(Path(__file__).resolve())
    if ranks == 0:
        command = [sys.executable, here, "--single", "--steps", str(steps)]
        env = dict(os.environ)
    else:
        mpiexec = Path(sysconfig.get_path("scripts")) / "mpiexec"
        command = [str(mpiexec if mpiexec.exists() else "mpiexec"), "-n", str(ranks), sys.executable, here,
                   "--worker", "--steps", str(steps)]
        env = dict(os.environ, RNNKIT_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ring_allreduce_seconds(ranks: int, nbytes: int, bandwidth: float, latency: float) -> float:
    """Ring allreduce: a reduce-scatter then an all-gather, each ``P - 1`` steps moving ``nbytes / P``."""
    if ranks == 1:
        return 0.0
    return 2 * (ranks - 1) / ranks * nbytes / bandwidth + 2 * (ranks - 1) * latency


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.steps)
        return {}
    if args.single:
        single(args.steps)
        return {}
    configurations = [0, 1, 2, 4]          # 0: one process, all cores, plain fit
    runs: dict[int, list[dict]] = {c: [] for c in configurations}
    for repeat in range(args.repeats):
        for c in (configurations if repeat % 2 == 0 else configurations[::-1]):
            runs[c].append(_run(c, args.steps))
            print(f"  repeat {repeat + 1}: {'1 process, all cores' if c == 0 else f'{c} rank(s)'}: "
                  f"{runs[c][-1]['step_s'] * 1e3:.1f} ms/step", file=sys.stderr, flush=True)
    step = {c: statistics.median(r["step_s"] for r in runs[c]) for c in configurations}
    allreduce = {c: statistics.median(r["allreduce_s"] for r in runs[c]) for c in configurations}
    wait = {c: statistics.median(r["wait_s"] for r in runs[c]) for c in configurations}
    nbytes = runs[1][0]["gradient_bytes"]
    cores = os.cpu_count()
    print(f"\nmedium LSTM training, batch {B} per rank, float32; {cores} cores; medians of {args.repeats} runs")
    print("| ranks | ms/step | samples/s | speedup vs 1 rank | efficiency | allreduce ms/step | waiting ms/step |")
    print("|---|---|---|---|---|---|---|")
    table = []
    for c in configurations:
        ranks = max(c, 1)
        rate = B * ranks / step[c]
        speedup = rate / (B / step[1])
        label = f"1 (plain fit, {cores} threads)" if c == 0 else str(c)
        efficiency = speedup / ranks if c else speedup / cores
        print(f"| {label} | {step[c] * 1e3:.1f} | {rate:.0f} | {speedup:.2f}x | {efficiency:.0%} | "
              f"{allreduce[c] * 1e3:.2f} | {wait[c] * 1e3:.1f} |")
        table.append({"ranks": c, "step_ms": step[c] * 1e3, "samples_per_s": rate, "speedup": speedup,
                      "efficiency": efficiency, "allreduce_ms": allreduce[c] * 1e3, "wait_ms": wait[c] * 1e3})
    compute = step[1]                      # one core's time for a batch of 64, no communication
    bandwidth, latency = 100e9 / 8, 5e-6
    print(f"\nring allreduce model: gradient {nbytes / 2**20:.2f} MiB (float32), 100 Gb/s links, "
          f"{latency * 1e6:.0f} us per message step, no overlap; compute {compute * 1e3:.0f} ms per batch of {B} "
          "per rank (one core)")
    print("| ranks | allreduce ms/step | efficiency |")
    print("|---|---|---|")
    model = []
    for ranks in (8, 64, 512):
        comm = ring_allreduce_seconds(ranks, nbytes, bandwidth, latency)
        efficiency = compute / (compute + comm)
        print(f"| {ranks} | {comm * 1e3:.2f} | {efficiency:.1%} |")
        model.append({"ranks": ranks, "allreduce_ms": comm * 1e3, "efficiency": efficiency})
    result = {"measured": table, "model": model, "gradient_bytes": nbytes, "repeats": args.repeats}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
