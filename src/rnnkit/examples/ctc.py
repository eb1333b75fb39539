"""Read strings of handwritten digits with CTC: Conv1D + bidirectional GRU, never told where a digit is.

Data: scikit-learn's ``load_digits`` (1,797 images of 8x8 pixels, values 0-16, shipped with
scikit-learn, nothing is downloaded), scaled to [0, 1] and split by image into training and test
sets, stratified by class. A string lays 3 to 6 images side by side with 0 to 2 empty columns between
them; the network reads it column by column, 8 pixels per step (58 steps, zeros after the string's
end). Training strings use only training images and test strings only test images.

The model: ``Conv1D(32, 4, strides=2, padding="same", relu)`` over neighbouring columns (29 output
steps, 4 per digit, enough for six digits and a blank between repeats), ``Bidirectional(GRU,
return_sequences=True)`` and ``Dense(11, softmax)`` (the ten digits and the CTC blank, class 0),
trained with ``loss="ctc"`` on the digit strings alone: no digit positions are given. It is read
out by greedy (best path) and prefix beam search decoding, and scored by the character error rate
(CER: edit distance over reference length) and the share of strings read exactly.

The reference is scikit-learn's ``LogisticRegression`` on the 64 pixels of single training images,
applied to every digit of the test strings *with their true positions given*: an easier task (no
segmentation to find), so its CER is the per-digit error rate of a good image classifier.

The bar: greedy CER below 5 % (``--quick``, 600 strings, a smaller GRU, 8 epochs: below 15 %).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from rnnkit.examples.digits import load_split  # the same stratified split of load_digits as the digits demo

ROWS = COLS = 8
CLASSES = 11                      # the blank (0) and the digits 0-9 as classes 1-10
MIN_DIGITS, MAX_DIGITS, MAX_GAP = 3, 6, 2
STEPS = MAX_DIGITS * COLS + (MAX_DIGITS - 1) * MAX_GAP


def make_strings(images: np.ndarray, digits: np.ndarray, n: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """``n`` strings of 3-6 of ``images`` side by side.

    Returns ``x (n, STEPS, 8)`` (a column of 8 pixels per step, zeros after the end), ``y (n, 6)``
    (digit + 1, padded with the blank 0, the layout the CTC loss takes) and, per string, the indices
    of the images it uses (what the baseline is given).
    """
    x = np.zeros((n, STEPS, ROWS), dtype=np.float32)
    y = np.zeros((n, MAX_DIGITS), dtype=np.int64)
    used = []
    for i in range(n):
        picks = rng.integers(0, len(images), size=rng.integers(MIN_DIGITS, MAX_DIGITS + 1))
        t = 0
        for j, k in enumerate(picks):
            t += int(rng.integers(0, MAX_GAP + 1)) if j else 0
            x[i, t:t + COLS] = images[k].T                               # (8 columns, 8 rows): columns are steps
            t += COLS
        y[i, :len(picks)] = digits[picks] + 1
        used.append(picks)
    return x, y, used


def build_model(filters: int, units: int, learning_rate: float, seed: int):
    from rnnkit.layers import GRU, Bidirectional, Conv1D, Dense, Input
    from rnnkit.losses import CTC
    from rnnkit.models import Sequential
    from rnnkit.optimizers import Adam

    model = Sequential([Input(shape=(STEPS, ROWS)),
                        Conv1D(filters, 4, strides=2, padding="same", activation="relu"),   # (B, T/2, F)
                        Bidirectional(GRU(units, return_sequences=True)),                  # (B, T/2, 2H)
                        Dense(CLASSES, activation="softmax")], seed=seed)                 # (B, T/2, 11)
    model.compile(optimizer=Adam(learning_rate=learning_rate, clipnorm=5.0), loss=CTC())
    return model


def read_out(paths: np.ndarray) -> list[list[int]]:
    """Decoded class rows (``-1`` padded) as digit lists."""
    return [[int(c) - 1 for c in row if c >= 0] for row in paths]


def scores(references: list[list[int]], hypotheses: list[list[int]]) -> tuple[float, float]:
    """``(CER, share of strings read exactly)``."""
    from rnnkit.ctc import character_error_rate

    exact = float(np.mean([r == h for r, h in zip(references, hypotheses)]))
    return character_error_rate(references, hypotheses), exact


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rnnkit demo ctc", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer strings, a smaller network, fewer epochs (seconds)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the strings, the weights and shuffling")
    p.add_argument("--strings", type=int, default=None, help="training strings (default 4000; quick 600)")
    p.add_argument("--test-strings", type=int, default=None, help="held-out strings (default 500; quick 200)")
    p.add_argument("--units", type=int, default=None, help="GRU units per direction (default 48; quick 24)")
    p.add_argument("--filters", type=int, default=32, help="Conv1D filters (default 32)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 15; quick 8)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=None, help="Adam's (default 0.005; quick 0.01)")
    p.add_argument("--beam-width", type=int, default=10, help="prefix beam search width (default 10)")
    p.add_argument("--test-size", type=float, default=0.3, help="share of the images held out (default 0.3)")
    args = p.parse_args(argv)
    args.strings = args.strings or (600 if args.quick else 4000)
    args.test_strings = args.test_strings or (200 if args.quick else 500)
    args.units = args.units or (24 if args.quick else 48)
    args.epochs = args.epochs or (8 if args.quick else 15)
    args.learning_rate = args.learning_rate or (0.01 if args.quick else 0.005)
    for name in ("strings", "test_strings", "units", "filters", "epochs", "batch_size", "beam_width"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer")
    if not args.learning_rate > 0:
        p.error("--learning-rate must be positive")
    if not 0.0 < args.test_size < 1.0:
        p.error("--test-size must lie between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from rnnkit.ctc import ctc_decode
    from rnnkit.examples import require

    require("sklearn", "datasets", "scikit-learn")
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x_train, x_test, d_train, d_test = load_split(args.test_size, args.seed)
    rng = np.random.default_rng(args.seed)
    xs_train, ys_train, _ = make_strings(x_train, d_train, args.strings, rng)
    xs_test, ys_test, used_test = make_strings(x_test, d_test, args.test_strings, rng)
    references = [list(d_test[picks]) for picks in used_test]
    print(f"load_digits: {len(x_train)} training and {len(x_test)} test images; {args.strings} training and "
          f"{args.test_strings} test strings of {MIN_DIGITS}-{MAX_DIGITS} digits, {STEPS} columns of {ROWS} pixels")

    t0 = time.perf_counter()
    baseline = LogisticRegression(max_iter=2000)
    with threadpool_limits(1):   # a small problem: on a busy machine more BLAS threads only wait for each other
        baseline.fit(x_train.reshape(len(x_train), -1), d_train)          # (N, 64): single images
    guess = baseline.predict(x_test.reshape(len(x_test), -1))             # every test image, known positions
    baseline_cer, baseline_exact = scores(references, [list(guess[picks]) for picks in used_test])
    baseline_seconds = time.perf_counter() - t0

    model = build_model(args.filters, args.units, args.learning_rate, args.seed)
    print(f"Training Conv1D({args.filters}, 4, strides=2) -> Bidirectional(GRU({args.units})) -> "
          f"Dense({CLASSES}, softmax) with the CTC loss, {args.epochs} epochs ...")
    t0 = time.perf_counter()
    history = model.fit(xs_train, ys_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    train_seconds = time.perf_counter() - t0
    print(f"  done in {train_seconds:.1f} s, CTC loss {history.history['loss'][0]:.3f} -> "
          f"{history.history['loss'][-1]:.3f}")

    probabilities = model.predict(xs_test, verbose=0)                     # (N, T/2, 11)
    lengths = np.full(len(xs_test), probabilities.shape[1])
    greedy_cer, greedy_exact = scores(references, read_out(ctc_decode(probabilities, lengths)[0][0]))
    t0 = time.perf_counter()
    beam = ctc_decode(probabilities, lengths, strategy="beam_search", beam_width=args.beam_width)[0][0]
    beam_seconds = time.perf_counter() - t0
    beam_cer, beam_exact = scores(references, read_out(beam))

    print(f"\n{'reader':<48} {'CER':>7} {'strings exact':>14}")
    print(f"{'CTC model, greedy decoding':<48} {greedy_cer:>7.4f} {greedy_exact:>14.4f}")
    print(f"{f'CTC model, beam search (width {args.beam_width})':<48} {beam_cer:>7.4f} {beam_exact:>14.4f}")
    print(f"{'LogisticRegression per image, positions given':<48} {baseline_cer:>7.4f} {baseline_exact:>14.4f}")
    bar = 0.15 if args.quick else 0.05
    passed = greedy_cer < bar
    print(f"\nBar ({'quick: ' if args.quick else ''}greedy CER below {bar:.0%}): {'met' if passed else 'NOT met'}")
    return {"cer_greedy": greedy_cer, "exact_greedy": greedy_exact, "cer_beam": beam_cer, "exact_beam": beam_exact,
            "baseline_cer": baseline_cer, "baseline_exact": baseline_exact, "train_seconds": train_seconds,
            "beam_seconds": beam_seconds, "baseline_seconds": baseline_seconds,
            "final_loss": float(history.history["loss"][-1]), "bar_met": bool(passed)}


if __name__ == "__main__":
    main()
