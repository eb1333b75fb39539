"""Coverage-guided fuzzing of ``rnnkit.load_model`` with atheris (libFuzzer for Python), for release checks.

Not part of the test suite: ``tests/test_load_fuzz.py`` runs thousands of seeded, structured mutations in
CI; this harness runs for as long as it is given, with libFuzzer choosing byte mutations that reach new
lines of rnnkit (every rnnkit module is instrumented for coverage).

Each input is written to a temporary file and loaded. The outcomes that are *not* findings are the
in-suite test's: the file is refused with ``rnnkit.ModelFileError``; or it loads, and the model predicts
and trains one step (a compiled model with its own settings, an uncompiled one with ``sgd``/``mse``),
where a step refused with ``NonFiniteError`` (finite but huge weights overflow the loss) is clean too;
or it loads a model whose inputs or activations are too large to run here (over 10**5 values per sample,
e.g. ``RepeatVector(10**9)``, a valid layer), which is not run. Any other exception, a non-array output,
a step that leaves non-finite weights without an error, or a trained model that does not save and
read back the same is a finding: the harness raises, libFuzzer
stops and writes the input to ``crash-<sha1>`` (``-artifact_prefix=DIR/`` puts it elsewhere). Slow or
memory-hungry inputs are libFuzzer's ``-timeout=`` and ``-rss_limit_mb=`` findings (``timeout-*``, ``oom-*``).

Usage (see ``docs/release-checks.md``)::

    pip install atheris                    # not an rnnkit dependency
    python tools/fuzz_load.py --make-corpus fuzz-corpus        # the in-suite test's four saved models
    python tools/fuzz_load.py fuzz-corpus -max_total_time=600 -timeout=10 -rss_limit_mb=4096

``python tools/fuzz_load.py --summarize fuzz-corpus`` loads every file of a corpus again and counts the
outcomes by kind (what share of the inputs that reached new code loaded, were refused, ...).

Arguments after the corpus folder are libFuzzer's (``-help=1`` lists them); new inputs that reach new
coverage are added to the corpus folder. A crash file is replayed with
``python tools/fuzz_load.py crash-<sha1>``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: the in-suite fuzz test, whose model builders make the seed corpus
FUZZ_TEST = REPO / "tests" / "test_load_fuzz.py"
#: inputs and activations larger than this (values per sample) are not run (the in-suite test's bound)
MAX_VALUES_PER_SAMPLE = 10**5
B, T = 3, 4         # the batch and the length taken for a variable one, as in the in-suite test

INSTALL = ("This harness needs atheris (coverage-guided fuzzing, not an rnnkit dependency): "
           "pip install atheris  (a prebuilt wheel on Linux x86-64; where there is none it builds against "
           "clang's libFuzzer, see https://github.com/google/atheris).")


def _test_module():
    """``tests/test_load_fuzz.py`` imported as a module (its builders make the corpus)."""
    if not FUZZ_TEST.is_file():
        raise SystemExit(f"--make-corpus needs the repository's {FUZZ_TEST.relative_to(REPO)}, which is not here.")
    spec = importlib.util.spec_from_file_location("rnnkit_test_load_fuzz", FUZZ_TEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_corpus(folder: Path) -> list[Path]:
    """Save the in-suite fuzz test's models into ``folder`` (compiled ones after one training step, so the
    optimizer state is in the file, as that test does); return the paths written."""
    test = _test_module()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for build in test.BUILDERS:
        model = build()
        if model.compiled:
            test._train_one_step(model)
        path = folder / f"{build.__name__.lstrip('_')}.rnnkit"
        model.save(path)
        written.append(path)
    return written


# -- one input ---------------------------------------------------------------------------------------

def _largest_activation(model) -> int:
    """The most values per sample of any tensor in ``model``'s graph, or of a convolution's padded input
    (a variable length taken as T), nested models included."""
    from rnnkit import Model

    def size(t) -> int:
        return math.prod(T if d is None else d for d in t.shape[1:])

    sizes = [size(t) for t in model.inputs]
    for node in model.graph.nodes:
        sizes += [size(t) for t in node.outputs]
        span = getattr(node.layer, "span", None)
        if isinstance(span, int) and node.arg_tensors:
            sizes.append(span * (node.arg_tensors[0].shape[-1] or 1))
        if isinstance(node.layer, Model):
            sizes.append(_largest_activation(node.layer))
    return max(sizes)


def _inputs_for(model, np) -> list:
    """Inputs of 0s and 1s for ``model``'s input tensors: valid indices for an Embedding, numbers for the rest."""
    r = np.random.default_rng(1)
    return [r.integers(0, 2, size=(B, *[T if d is None else d for d in t.shape[1:]])).astype(t.dtype)
            for t in model.inputs]


def check_file(path: Path) -> str:
    """Load ``path`` and run what loaded; return the clean outcome's name, or raise (a finding)."""
    import numpy as np

    import rnnkit
    from rnnkit.errors import NonFiniteError

    try:
        model = rnnkit.load_model(path)
    except rnnkit.ModelFileError:
        return "rejected"
    if _largest_activation(model) > MAX_VALUES_PER_SAMPLE:
        return "loaded_huge_activations"
    x = _inputs_for(model, np)
    feed = x if len(x) > 1 else x[0]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)     # finite but huge weights overflow: expected
        out = model.predict(feed, verbose=0)
        outputs = out if isinstance(out, list) else [out]
        if not all(isinstance(o, np.ndarray) and o.shape[0] == B for o in outputs):
            raise AssertionError(f"predict returned {[type(o).__name__ for o in outputs]} for a batch of {B}")
        if not model.compiled:
            model.compile("sgd", loss="mse")
        y = [np.full(o.shape, 0.5) for o in outputs]
        try:
            model.train_on_batch(feed, y if len(y) > 1 else y[0])
        except NonFiniteError:
            return "loaded_nonfinite_step"
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        raise AssertionError("a training step left non-finite weights without raising NonFiniteError")
    # what loaded and trained saves again and reads back the same
    again = path.with_name("again.rnnkit")
    model.save(again)
    if not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), rnnkit.load_model(again).get_weights())):
        raise AssertionError("the model saved again reads back with other weights")
    return "loaded"


def _structured_mutator(atheris):
    """A libFuzzer custom mutator that knows the file's layout, so that mutations get past the length prefix.

    A model file is an 8-byte header length, a JSON header (tensor entries and ``__metadata__``, whose
    ``model_config`` and ``compile_config`` are JSON texts themselves) and the tensor data. Mutating
    the bytes alone almost always breaks the length or the JSON, which the loader refuses at once; so
    a share of the mutations edit the header or one metadata text with libFuzzer's own byte mutator and
    write the length back, and the rest mutate the whole file as bytes.
    """
    import json
    import random
    import struct

    def mutate(data: bytes, max_size: int, seed: int) -> bytes:
        out = structured(data, max_size, seed)
        # libFuzzer refuses an input over its length limit: the plain byte mutator then
        return out if out is not None and len(out) <= max_size else atheris.Mutate(data, max_size)

    def structured(data: bytes, max_size: int, seed: int) -> bytes | None:
        r = random.Random(seed)
        choice = r.random()
        if len(data) >= 8 and choice < 0.75:
            (n,) = struct.unpack("<Q", data[:8])
            if n <= len(data) - 8:
                header, rest = data[8:8 + n], data[8 + n:]
                if choice < 0.45:
                    try:
                        parsed = json.loads(header)
                        meta = parsed["__metadata__"]
                        key = r.choice(sorted(k for k, v in meta.items() if isinstance(v, str)))
                    except (ValueError, KeyError, TypeError, IndexError, RecursionError):
                        parsed = None
                    if parsed is not None:
                        text = meta[key].encode("utf-8")
                        meta[key] = atheris.Mutate(text, len(text) + 64).decode("utf-8", "replace")
                        header = json.dumps(parsed).encode("utf-8")
                        return struct.pack("<Q", len(header)) + header + rest
                header = atheris.Mutate(header, len(header) + 64)
                return struct.pack("<Q", len(header)) + header + rest
        return None

    return mutate


def _fuzz(argv: list[str]) -> None:
    try:
        import atheris
    except ImportError:
        raise SystemExit(INSTALL) from None
    with atheris.instrument_imports(include=["rnnkit"]):
        import rnnkit  # noqa: F401 - imported here so that its modules are instrumented
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))
    path = folder / "input.rnnkit"

    def test_one_input(data: bytes) -> None:
        path.write_bytes(data)
        check_file(path)

    atheris.Setup([sys.argv[0], *argv], test_one_input, custom_mutator=_structured_mutator(atheris))
    try:
        atheris.Fuzz()
    finally:
        for leftover in (path, path.with_name("again.rnnkit")):
            leftover.unlink(missing_ok=True)
        folder.rmdir()


def summarize(folder: Path) -> dict[str, int]:
    """Run every file of ``folder`` (a corpus) through ``check_file``; print and return the outcome counts,
    a finding counted under its exception's type and listed with its file."""
    from collections import Counter

    counts: Counter = Counter()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            counts[check_file(path)] += 1
        except Exception as exc:  # noqa: BLE001 - every other exception is a finding, reported here
            counts[f"FINDING {type(exc).__name__}"] += 1
            print(f"finding: {path.name}: {type(exc).__name__}: {str(exc)[:300]}")
    print(f"{sum(counts.values())} files: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return dict(counts)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    parser.add_argument("--make-corpus", metavar="DIR", type=Path,
                        help="write the in-suite fuzz test's saved models to DIR (the seed corpus) and exit")
    parser.add_argument("--summarize", metavar="DIR", type=Path,
                        help="load every file of DIR (e.g. a corpus after a run) and count the outcomes by kind")
    parser.add_argument("--help", "-h", action="store_true")
    known, rest = parser.parse_known_args(argv)
    if known.help:
        print(__doc__)
        return
    if known.make_corpus is not None:
        for p in make_corpus(known.make_corpus):
            print(f"wrote {p} ({p.stat().st_size} bytes)")
        return
    if known.summarize is not None:
        summarize(known.summarize)
        return
    _fuzz(rest)


if __name__ == "__main__":
    main()
