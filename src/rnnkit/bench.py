"""The benchmark suite: rnnkit against PyTorch (and Keras where installed), in one process.

Method (``shared/BENCHMARKS.md``): same machine, threads and dtype (float32); the two
contenders alternate (A B A B ...) and each figure is the median of the per-pair ratios
``peer time / rnnkit time``; the machine's sgemm peak is measured in the same run, and every
recurrent workload is reported as GFLOP/s and as a share of that peak, using
``6 * B * T * G * H * (D + H)`` flops per training step (``2 * ...`` for inference).

Run with ``python benchmarks/run.py`` or ``rnnkit bench``; ``--quick`` for a smoke run.
``--contended`` runs the suite a second time, in the same invocation, while another process
keeps one core busy (a plain Python loop), and reports each contender's slowdown
(contended time / idle time) per shape and mode beside the idle ratios.

The PyTorch side of every shape is the same model as rnnkit's: it starts from a copy of the
rnnkit model's seeded weights (``rnnkit.interop.to_torch`` and the Dense head), so both
contenders compute the same numbers, down to gradients that decay into subnormal floats.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import numpy as np


@dataclass
class Shape:
    name: str
    cell: str            # "tanh", "relu" (SimpleRNN), "lstm", "gru"
    B: int
    T: int
    D: int
    H: int
    K: int = 10          # classes of the Dense softmax head
    layers: int = 1
    bidirectional: bool = False

    @property
    def gates(self) -> int:
        return {"lstm": 4, "gru": 3}.get(self.cell, 1)

    def flops(self, training: bool) -> float:
        """Recurrent-layer flops of one step over the batch: 6 (train) or 2 (infer) * B T G H (D + H)."""
        dirs = 2 if self.bidirectional else 1
        total, d = 0.0, self.D
        for _ in range(self.layers):
            total += dirs * self.B * self.T * self.gates * self.H * (d + self.H)
            d = dirs * self.H
        return (6.0 if training else 2.0) * total


SHAPES = [
    Shape("tiny-tanh", "tanh", 32, 40, 65, 50, K=65),
    Shape("tiny-relu", "relu", 32, 40, 65, 50, K=65),
    Shape("small-lstm", "lstm", 32, 100, 64, 128),
    Shape("small-gru", "gru", 32, 100, 64, 128),
    Shape("medium", "lstm", 64, 100, 123, 320),
    Shape("large-b16", "lstm", 16, 25, 512, 512),
    Shape("large-b64", "lstm", 64, 25, 512, 512),
    Shape("bilstm", "lstm", 32, 100, 128, 256, layers=2, bidirectional=True),
    Shape("gru-long", "gru", 16, 200, 100, 256),        # gradients decay into subnormal floats
    Shape("lstm-wide-batch", "lstm", 128, 50, 32, 64),  # element-wise bound
    Shape("lstm-small-batch", "lstm", 8, 30, 20, 32),   # overhead bound
]


@dataclass
class Row:
    shape: str
    mode: str                    # "train", "predict", "stream", "end-to-end"
    rnnkit_ms: float
    peer: str
    peer_ms: float
    ratio: float                 # median over pairs of peer time / rnnkit time
    gflops: float | None = None
    peak_share: float | None = None
    extra: dict = field(default_factory=dict)


#: the longest one timing (``reps`` calls of rnnkit) is meant to last; see ``capped_reps``
MAX_TIMING_S = 1.0


@dataclass
class ContendedRow:
    """One measurement run again with a busy neighbour, beside its idle run."""
    shape: str
    mode: str
    peer: str
    rnnkit_ms: float             # contended medians
    peer_ms: float
    ratio: float                 # contended median over pairs of peer time / rnnkit time
    rnnkit_idle_ms: float
    peer_idle_ms: float
    idle_ratio: float
    rnnkit_slowdown: float       # contended time / idle time
    peer_slowdown: float
    rnnkit_worse: bool           # rnnkit slows down more than the peer


def kernels_info() -> dict:
    """``rnnkit.kernels_info()`` where the compiled core provides it, else ``{"path": "numpy"}``."""
    import rnnkit

    info = getattr(rnnkit, "kernels_info", None)
    if info is None:
        return {"path": "numpy"}
    try:
        return dict(info() if callable(info) else info)
    except Exception as exc:  # a broken report must not stop the benchmark; it shows in the output
        return {"path": "unknown", "error": f"{type(exc).__name__}: {exc}"}


def format_kernels(info: dict) -> str:
    return "rnnkit kernels: " + ", ".join(f"{k}: {v}" for k, v in info.items())


def sgemm_peak(seconds: float = 1.0) -> float:
    """GFLOP/s of a float32 2048^3 matmul with all threads: the machine's practical limit."""
    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.copy()
    a @ b
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def paired(a: Callable[[], None], b: Callable[[], None], pairs: int, reps: int) -> tuple[float, float, float]:
    """Alternate ``a`` and ``b``; return (median ms of a, median ms of b, median of per-pair b/a).

    The order inside a pair alternates too (A B, B A, ...), so that whatever one contender
    leaves behind (warm caches, a peer's spinning worker threads) does not always land on the
    same side.
    """
    def timed(f):
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        return (time.perf_counter() - t0) / reps

    for _ in range(2):
        a()
        b()
    ta, tb, ratios = [], [], []
    for i in range(pairs):
        if i % 2 == 0:
            x, y = timed(a), timed(b)
        else:
            y, x = timed(b), timed(a)
        ta.append(x)
        tb.append(y)
        ratios.append(y / x)
    return statistics.median(ta) * 1e3, statistics.median(tb) * 1e3, statistics.median(ratios)


# -- rnnkit and PyTorch models of a shape ------------------------------------------------------

def rnnkit_model(s: Shape, stream: bool = False):
    from rnnkit import Sequential
    from rnnkit.layers import GRU, LSTM, Bidirectional, Dense, SimpleRNN

    model = Sequential(seed=0)
    for i in range(s.layers):
        last = i == s.layers - 1
        kwargs = {"return_sequences": (not last) or stream, "stateful": stream}
        if i == 0:
            kwargs["input_shape"] = (None if stream else s.T, s.D)
        if s.cell in ("tanh", "relu"):
            layer = SimpleRNN(s.H, activation=s.cell, **kwargs)
        else:
            layer = (LSTM if s.cell == "lstm" else GRU)(s.H, **kwargs)
        model.add(Bidirectional(layer) if s.bidirectional else layer)
    model.add(Dense(s.K, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    if not model.built:    # a Bidirectional first layer is built on its first call: build it now (same weights)
        model.build((None, None if stream else s.T, s.D))
    return model


def torch_model(s: Shape, like=None):
    """PyTorch's recurrent stack and Linear head of a shape.

    With ``like`` (the rnnkit model of the same shape) both start from copies of its weights,
    so that the two contenders compute the same model; without it, PyTorch's own initialisation.
    """
    import torch

    if like is not None:
        from rnnkit.interop import to_torch

        rnn = to_torch(like.layers[:-1])
        dense = like.layers[-1]
        head = torch.nn.Linear(*dense.params["kernel"].shape)
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(np.ascontiguousarray(dense.params["kernel"].T)))
            head.bias.copy_(torch.from_numpy(dense.params["bias"]))
        return rnn, head
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(s.cell, torch.nn.RNN)
    kwargs = {"nonlinearity": s.cell} if cls is torch.nn.RNN else {}
    rnn = cls(s.D, s.H, num_layers=s.layers, batch_first=True, bidirectional=s.bidirectional, **kwargs)
    head = torch.nn.Linear(s.H * (2 if s.bidirectional else 1), s.K)
    return rnn, head


def capped_reps(f: Callable[[], None], reps: int, max_s: float | None = None) -> int:
    """``reps``, lowered where ``reps`` calls of ``f`` would take longer than ``max_s``.

    The repetitions per timing come from the flop count at the measured peak, aiming at about
    50 ms; for a model bound by per-call overhead (under 5% of the peak) that estimate is far too
    short and one timing would last seconds. Only there does this bound apply: it is one rule
    for every shape. A call's cost is the fastest of three, after a warm-up call.
    """
    max_s = MAX_TIMING_S if max_s is None else max_s
    if reps <= 1:
        return reps
    f()                                    # warm-up: the first call may set things up
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return max(1, min(reps, int(max_s / best)))


def bench_shape(s: Shape, peak: float, pairs: int, rows: list[Row], plan: dict | None = None) -> None:
    """Training step and ``predict`` of a shape, each paired against PyTorch.

    ``plan`` maps (shape, mode) to the repetitions per timing; missing entries are filled in, so a
    second pass given the same dict (the contended one) times exactly the same work.
    """
    import torch

    rng = np.random.default_rng(0)
    x = rng.standard_normal((s.B, s.T, s.D)).astype(np.float32)
    y = rng.integers(0, s.K, size=s.B)
    model = rnnkit_model(s)
    rnn, head = torch_model(s, like=model)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=1e-3, eps=1e-7)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def last(out):
        """What rnnkit's last layer returns: the last step, or for Bidirectional the forward
        direction's last output beside the backward direction's (which is at step 0)."""
        if not s.bidirectional:
            return out[:, -1]
        return torch.cat([out[:, -1, :s.H], out[:, 0, s.H:]], dim=-1)

    def torch_train():
        opt.zero_grad()
        out, _ = rnn(xt)
        loss = torch.nn.functional.cross_entropy(head(last(out)), yt)
        loss.backward()
        opt.step()

    def torch_predict():
        with torch.no_grad():
            out, _ = rnn(xt)
            torch.softmax(head(last(out)), dim=-1)

    def rnnkit_train():
        model.train_on_batch(x, y)

    def rnnkit_predict():
        model.predict(x, batch_size=s.B, verbose=0)

    work = s.flops(True) * s.B / s.B
    reps = max(1, int(0.05 / max(work / (peak * 1e9), 1e-5)))
    plan = {} if plan is None else plan
    for mode, f, g, n in (("train", rnnkit_train, torch_train, reps),
                          ("predict", rnnkit_predict, torch_predict, reps * 2)):
        if (s.name, mode) not in plan:
            plan[s.name, mode] = capped_reps(f, n)
        n = plan[s.name, mode]
        a, b, r = paired(f, g, pairs, n)
        flops = s.flops(mode == "train")
        rows.append(Row(s.name, mode, a, "pytorch", b, r, flops / a / 1e6, flops / a / 1e6 / peak, {"reps": n}))


def bench_stream(pairs: int, rows: list[Row]) -> None:
    """One step of a 2-layer LSTM(256) character model for one sequence, state carried."""
    import torch

    s = Shape("stream", "lstm", 1, 1, 65, 256, K=65, layers=2)
    model = rnnkit_model(s, stream=True)
    rnn, head = torch_model(s, like=model)
    x = np.zeros((1, 1, 65), np.float32)
    x[0, 0, 3] = 1
    xt = torch.from_numpy(x)
    state = [None]

    def torch_step():
        with torch.no_grad():
            out, state[0] = rnn(xt, state[0])
            torch.softmax(head(out[:, -1]), dim=-1)

    a, b, r = paired(lambda: model.predict_on_batch(x), torch_step, pairs, 200)
    rows.append(Row("stream", "stream", a, "pytorch", b, r))


# -- the article's program end to end -----------------------------------------------------------

def article_rnnkit() -> None:
    from rnnkit.demo import DemoConfig, run_demo

    run_demo(DemoConfig(verbose=0), out=lambda *_: None)


def article_torch() -> None:
    import torch

    from rnnkit.demo import ARTICLE_START, ARTICLE_TEXT
    from rnnkit.text import char_dataset

    vocab, X, Y = char_dataset(ARTICLE_TEXT, 3)
    xt, yt = torch.from_numpy(X), torch.from_numpy(Y.argmax(-1))
    rnn = torch.nn.RNN(len(vocab), 50, batch_first=True, nonlinearity="relu")
    head = torch.nn.Linear(50, len(vocab))
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=1e-3, eps=1e-7)
    for _ in range(100):
        perm = torch.randperm(len(xt))
        for lo in range(0, len(xt), 32):
            idx = perm[lo:lo + 32]
            opt.zero_grad()
            out, _ = rnn(xt[idx])
            torch.nn.functional.cross_entropy(head(out[:, -1]), yt[idx]).backward()
            opt.step()
    text = ARTICLE_START
    with torch.no_grad():
        for _ in range(50):
            ids = vocab.encode(text[-3:])
            x = torch.nn.functional.one_hot(torch.from_numpy(ids), len(vocab)).float()[None]
            out, _ = rnn(x)
            text += vocab.index_to_char[int(torch.softmax(head(out[:, -1]), -1).argmax())]


def article_keras() -> None:
    import keras

    from rnnkit.demo import ARTICLE_START, ARTICLE_TEXT
    from rnnkit.text import char_dataset

    vocab, X, Y = char_dataset(ARTICLE_TEXT, 3)
    model = keras.Sequential([keras.Input((3, len(vocab))), keras.layers.SimpleRNN(50, activation="relu"),
                              keras.layers.Dense(len(vocab), activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, Y, epochs=100, verbose=0)
    text = ARTICLE_START
    for _ in range(50):
        x = np.eye(len(vocab), dtype=np.float32)[vocab.encode(text[-3:])][None]
        text += vocab.index_to_char[int(np.argmax(model.predict(x, verbose=0)))]


def bench_article(pairs: int, rows: list[Row], with_keras: bool) -> None:
    a, b, r = paired(article_rnnkit, article_torch, pairs, 1)
    rows.append(Row("article", "end-to-end", a, "pytorch", b, r))
    if with_keras:
        a, b, r = paired(article_rnnkit, article_keras, max(1, pairs // 3), 1)
        rows.append(Row("article", "end-to-end", a, "keras", b, r))


# -- memory --------------------------------------------------------------------------------------

_MEMORY_CHILD = r"""
import sys, numpy as np
sys.path[:0] = {path!r}
from rnnkit.bench import SHAPES, rnnkit_model, torch_model
import torch
torch.set_num_threads({threads})

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])          # kB

s = [s for s in SHAPES if s.name == {shape!r}][0]
rng = np.random.default_rng(0)
x = rng.standard_normal((s.B, s.T, s.D)).astype(np.float32); y = rng.integers(0, s.K, size=s.B)
if {which!r} == "rnnkit":
    m = rnnkit_model(s); step = lambda: m.train_on_batch(x, y)
else:
    rnn, head = torch_model(s); opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()])
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    def step():
        opt.zero_grad(); out, _ = rnn(xt)
        torch.nn.functional.cross_entropy(head(out[:, -1]), yt).backward(); opt.step()
step()                                           # optimizer state and caches exist from here on
open("/proc/self/clear_refs", "w").write("5")    # reset the peak-RSS mark (VmHWM) to the current RSS
before = status("VmRSS")
for _ in range(3):
    step()
print(status("VmHWM") - before)
"""


def training_memory(shape: str, threads: int) -> dict[str, float]:
    """Peak resident-set growth (MiB) during training steps, each library in a fresh process.

    After one warm-up step the peak mark is reset (Linux ``clear_refs``), so the figure is what
    a training step needs on top of the model, its optimizer state and what stays allocated.
    """
    import subprocess

    out = {}
    for which in ("rnnkit", "pytorch"):
        code = _MEMORY_CHILD.format(path=sys.path, threads=threads, shape=shape, which=which)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        out[which] = int(done.stdout.strip().splitlines()[-1]) / 1024
    return out


# -- contended mode: a busy neighbour -----------------------------------------------------------

_NEIGHBOUR = r"""
import os, sys
parent = os.getppid()
sys.stdout.write("busy\n")
sys.stdout.flush()
n = 0
while True:                                    # a plain Python loop: one core fully busy
    n += 1
    if n & 0xFFFFF == 0 and os.getppid() != parent:
        break                                  # the benchmark died without stopping us: stop too
"""


def start_neighbour() -> subprocess.Popen:
    """Start the busy neighbour, another process spinning on one core; return once it spins."""
    proc = subprocess.Popen([sys.executable, "-c", _NEIGHBOUR], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE)
    try:
        line = proc.stdout.readline()
        if line.strip() != b"busy":
            raise RuntimeError(f"the busy neighbour did not start (exit status {proc.poll()})")
    except BaseException:
        stop_neighbour(proc)
        raise
    return proc


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a live process has used, from ``/proc`` (None where there is none)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def stop_neighbour(proc: subprocess.Popen) -> float | None:
    """Stop the busy neighbour and reap it; return the CPU seconds it used (None if unknown)."""
    cpu = _cpu_seconds(proc.pid) if proc.poll() is None else None
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    return cpu


@contextlib.contextmanager
def busy_neighbour() -> Iterator[dict]:
    """A busy neighbour for the duration of the ``with`` block, stopped on the way out, error or not.

    Yields a dict that is filled on exit with ``wall_s``, ``cpu_s`` and ``busy_share`` (the share
    of one core the neighbour got: about 1 when it kept its core busy the whole time).
    """
    proc = start_neighbour()
    info: dict = {"pid": proc.pid}
    t0 = time.perf_counter()
    try:
        yield info
    finally:
        cpu = stop_neighbour(proc)
        wall = time.perf_counter() - t0
        info.update(wall_s=wall, cpu_s=cpu, busy_share=None if cpu is None else cpu / wall,
                    returncode=proc.returncode)


def contended_rows(idle: list[Row], busy: list[Row]) -> list[ContendedRow]:
    out = []
    for a, b in zip(idle, busy, strict=True):
        if (a.shape, a.mode, a.peer) != (b.shape, b.mode, b.peer):
            raise RuntimeError(f"the contended pass measured {b.shape}/{b.mode}/{b.peer} where the idle pass "
                               f"measured {a.shape}/{a.mode}/{a.peer}")
        rs, ps = b.rnnkit_ms / a.rnnkit_ms, b.peer_ms / a.peer_ms
        out.append(ContendedRow(a.shape, a.mode, a.peer, b.rnnkit_ms, b.peer_ms, b.ratio,
                                a.rnnkit_ms, a.peer_ms, a.ratio, rs, ps, rs > ps))
    return out


# -- driver --------------------------------------------------------------------------------------

def _shape_width(names) -> int:
    return max([10, *(len(n) for n in names)])


def format_table(rows: list[Row], peak: float, width: int | None = None) -> str:
    w = max(width or 0, _shape_width(r.shape for r in rows))
    lines = [f"sgemm peak (float32, 2048^3, same run): {peak:.1f} GFLOP/s", "",
             f"| {'shape':<{w}} | {'mode':<10} | {'rnnkit ms':>9} | {'peer':<7} | {'peer ms':>9} | "
             f"{'peer/rnnkit':>11} | {'GFLOP/s':>7} | {'% peak':>6} |",
             "|" + "|".join("-" * (n + 2) for n in (w, 10, 9, 7, 9, 11, 7, 6)) + "|"]
    for r in rows:
        gf = f"{r.gflops:.1f}" if r.gflops is not None else "-"
        pk = f"{100 * r.peak_share:.0f}%" if r.peak_share is not None else "-"
        lines.append(f"| {r.shape:<{w}} | {r.mode:<10} | {r.rnnkit_ms:>9.3f} | {r.peer:<7} | {r.peer_ms:>9.3f} | "
                     f"{r.ratio:>10.2f}x | {gf:>7} | {pk:>6} |")
    return "\n".join(lines)


def format_contended(rows: list[ContendedRow], neighbour: dict) -> str:
    w = _shape_width(r.shape for r in rows)
    share = neighbour.get("busy_share")
    got = f"; it got {100 * share:.0f}% of a core" if share is not None else ""
    lines = [f"contended: the same measurements with a busy neighbour (another process spinning on one core"
             f"{got}); slowdown = contended time / idle time",
             "",
             f"| {'shape':<{w}} | {'mode':<10} | {'peer':<7} | {'rnnkit ms':>9} | {'rnnkit slowdown':>15} | "
             f"{'peer ms':>9} | {'peer slowdown':>13} | {'peer/rnnkit':>11} | {'idle ratio':>10} | {'':<5} |",
             "|" + "|".join("-" * (n + 2) for n in (w, 10, 7, 9, 15, 9, 13, 11, 10, 5)) + "|"]
    for r in rows:
        mark = "worse" if r.rnnkit_worse else ""
        lines.append(f"| {r.shape:<{w}} | {r.mode:<10} | {r.peer:<7} | {r.rnnkit_ms:>9.3f} | "
                     f"{r.rnnkit_slowdown:>14.2f}x | {r.peer_ms:>9.3f} | {r.peer_slowdown:>12.2f}x | "
                     f"{r.ratio:>10.2f}x | {r.idle_ratio:>9.2f}x | {mark:<5} |")
    worse = sum(r.rnnkit_worse for r in rows)
    lines += ["", f"worse: rnnkit slows down more than its peer ({worse} of {len(rows)} rows)"]
    return "\n".join(lines)


def run_suite(wanted: set[str] | None, peak: float, pairs: int, with_keras: bool, plan: dict | None = None,
              label: str = "") -> list[Row]:
    """Every selected measurement once, in a fixed order (the contended pass repeats the idle one
    with the same ``plan`` of repetitions)."""
    rows: list[Row] = []
    if wanted is None or "article" in wanted:
        bench_article(pairs, rows, with_keras)
    shapes = [s for s in SHAPES if wanted is None or s.name in wanted]
    width = _shape_width(s.name for s in shapes)
    for s in shapes:
        bench_shape(s, peak, pairs, rows, plan)
        print(label + format_table(rows[-2:], peak, width).splitlines()[-1], file=sys.stderr, flush=True)
    if wanted is None or "stream" in wanted:
        bench_stream(pairs, rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rnnkit bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pairs: a smoke run, not for quoting")
    parser.add_argument("--only", nargs="*", help="shape names to run (default: all)")
    parser.add_argument("--json", default="benchmarks/results.json", help="where to write the JSON results")
    parser.add_argument("--no-keras", action="store_true", help="skip Keras even if installed")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both libraries")
    parser.add_argument("--pairs", type=int, default=None, help="A/B pairs per measurement (default 9, --quick 3)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory comparison")
    parser.add_argument("--contended", action="store_true",
                        help="then run the measurements again while another process keeps one core busy, "
                             "and report each contender's slowdown")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("rnnkit bench compares against PyTorch: pip install torch==2.13.0", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    with_keras = False
    if not args.no_keras:
        try:
            os.environ.setdefault("KERAS_BACKEND", "torch")
            import keras  # noqa: F401
            with_keras = True
        except ImportError:
            pass
    pairs = args.pairs or (3 if args.quick else 9)
    kernels = kernels_info()
    t0 = time.perf_counter()
    peak = sgemm_peak()
    wanted = set(args.only) if args.only else None
    plan: dict = {}
    rows = run_suite(wanted, peak, pairs, with_keras, plan)
    measure_memory = not args.no_memory and (wanted is None or "medium" in wanted)
    memory = training_memory("medium", args.threads) if measure_memory else {}
    contended: list[ContendedRow] = []
    neighbour: dict = {}
    if args.contended:
        # the same repetitions per timing as the idle pass (same plan)
        with busy_neighbour() as neighbour:
            busy = run_suite(wanted, peak, pairs, with_keras, plan, label="[contended] ")
        contended = contended_rows(rows, busy)
    print(format_kernels(kernels))
    print(format_table(rows, peak))
    if memory:
        print(f"\npeak RSS growth of a medium training step: rnnkit {memory['rnnkit']:.1f} MiB, "
              f"pytorch {memory['pytorch']:.1f} MiB")
    if args.contended:
        print("\n" + format_contended(contended, neighbour))
    count = len(rows) + len(contended)
    print(f"\n{count} measurements in {time.perf_counter() - t0:.0f} s, {args.threads} threads, float32, "
          f"numpy {np.__version__}, torch {torch.__version__}")
    result = {"peak_gflops": peak, "threads": args.threads, "kernels": kernels, "rows": [asdict(r) for r in rows],
              "memory_mib": memory, "numpy": np.__version__, "torch": torch.__version__}
    if args.contended:
        result["contended"] = [asdict(r) for r in contended]
        result["neighbour"] = neighbour
    folder = os.path.dirname(args.json)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = args.json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
