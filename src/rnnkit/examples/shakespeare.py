"""Write like Shakespeare: a 2-layer LSTM character model trained by truncated BPTT, then sampled.

Data: ``rnnkit.datasets.tiny_shakespeare``, Karpathy's 1.1 million characters of Shakespeare
(65 distinct characters); the first 90% train, the last 10% are the validation text.

The model, char-rnn's: ``Embedding -> LSTM -> LSTM -> Dense(softmax)`` over the characters,
``stateful=True`` so that each layer starts a batch from the state the previous batch left.
The training text is laid out by ``rnnkit.text.StreamBatches`` (cut into ``--batch-size``
rows; batch ``j`` holds the ``j``-th window of ``--seq-len`` characters of every row), read in
order (``shuffle=False``) with the states reset at each epoch (``rnnkit.text.ResetStates``):
truncated backpropagation through time, the gradient stopping at each window's start. After
every epoch the validation text, laid out the same way, is read from a reset state and scored
in bits per character (``rnnkit.metrics.BitsPerCharacter``). Then ``rnnkit.generation.generate``
samples text at temperatures 0.5, 0.8 and 1.0 and greedily, one LSTM step per new character
(the stateful path), and the time per character is compared with re-running a non-stateful
copy of the model over the whole context.

The baseline is the unigram model (each character drawn with its training frequency), 4.82
bits per character on the validation text. The default run (5 epochs over the whole training
text, about 3 minutes on 2 cores) reaches 2.31 bits per character; PyTorch's same model trained
the same way (``benchmarks/shakespeare_torch.py``) reaches 2.23. The bar: ``--quick`` (a smaller
model on the first 40,000 training characters, a few seconds) must beat the unigram baseline by
at least 0.6 bits per character on the validation text (it reaches 3.82 against 4.90).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

TEMPERATURES = (0.5, 0.8, 1.0)


def build_model(vocab_size: int, embedding_dim: int, units: int, seed: int, stateful: bool = True):
    """``Embedding -> LSTM -> LSTM -> Dense(softmax)``, reading any number of characters per call."""
    import rnnkit
    from rnnkit.layers import LSTM, Dense, Embedding

    return rnnkit.Sequential([
        rnnkit.Input(shape=(None,), dtype="int32"),                   # (B, T) character ids, any T
        Embedding(vocab_size, embedding_dim),                         # (B, T, E)
        LSTM(units, return_sequences=True, stateful=stateful),        # (B, T, H)
        LSTM(units, return_sequences=True, stateful=stateful),        # (B, T, H)
        Dense(vocab_size, activation="softmax"),                      # (B, T, V)
    ], name="char_lstm", seed=seed)


def unigram_bits(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int) -> float:
    """Bits per character of the training frequencies (add-one smoothed) on the validation text."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    p = counts / counts.sum()
    return float(-np.log2(p[val_ids]).mean())


def evaluate_stream(model, stream) -> float:
    """Bits per character of ``model`` over a ``StreamBatches``, read in order from a reset state."""
    model.reset_states()
    logs = model.evaluate(stream.x, stream.y, batch_size=stream.batch_size, verbose=0, return_dict=True)
    model.reset_states()
    return float(logs["bits_per_character"])


def time_per_token(model, vocab, prompt: str, n: int, seed: int) -> tuple[float, str]:
    """Seconds per generated character (mean over ``n``) and the text, sampled at temperature 0.8."""
    from rnnkit.generation import generate

    t0 = time.perf_counter()
    text = generate(model, prompt, n, temperature=0.8, seed=seed, vocab=vocab)
    return (time.perf_counter() - t0) / n, text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rnnkit demo shakespeare", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small model on a slice of the text (seconds)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="passes over the training text (default 5; quick 1)")
    p.add_argument("--units", type=int, default=None, help="LSTM units per layer (default 128; quick 48)")
    p.add_argument("--embedding-dim", type=int, default=None, help="character embedding size (default 32; quick 16)")
    p.add_argument("--batch-size", type=int, default=None, help="rows of the stream (default 16; quick 8)")
    p.add_argument("--seq-len", type=int, default=None, help="characters per window, the BPTT length (default 64; "
                   "quick 16)")
    p.add_argument("--train-chars", type=int, default=None, help="training characters used, from the start (0: all "
                   "1,003,854; default 0; quick 40,000)")
    p.add_argument("--val-chars", type=int, default=None, help="validation characters scored (default 40,000; "
                   "quick 10,000)")
    p.add_argument("--learning-rate", type=float, default=None, help="Adam's learning rate (default 0.002; "
                   "quick 0.01)")
    p.add_argument("--clipnorm", type=float, default=5.0, help="global gradient-norm clip (default 5)")
    p.add_argument("--length", type=int, default=None, help="characters per sample (default 300; quick 80)")
    p.add_argument("--context", type=int, default=None, help="context length at which the cost of a new character "
                   "is timed, stateful against re-run (default 1000; quick 200)")
    p.add_argument("--prompt", default="ROMEO:\n", help="the text the samples start from")
    p.add_argument("--verbose", type=int, default=None, choices=(0, 1, 2),
                   help="fit's progress output (default 1; quick 0)")
    args = p.parse_args(argv)
    quick = args.quick
    for name, full, small in (("epochs", 5, 1), ("units", 128, 48), ("embedding_dim", 32, 16),
                              ("batch_size", 16, 8), ("seq_len", 64, 16), ("train_chars", 0, 40_000),
                              ("val_chars", 40_000, 10_000), ("learning_rate", 0.002, 0.01), ("length", 300, 80),
                              ("context", 1000, 200), ("verbose", 1, 0)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    for name in ("epochs", "units", "embedding_dim", "batch_size", "seq_len", "val_chars", "length", "context"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}.")
    if args.train_chars < 0:
        p.error(f"--train-chars must be >= 0 (0: all), got {args.train_chars}.")
    if not (args.learning_rate > 0 and args.clipnorm > 0):
        p.error("--learning-rate and --clipnorm must be positive.")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import rnnkit
    from rnnkit.datasets import tiny_shakespeare
    from rnnkit.generation import generate
    from rnnkit.text import ResetStates, StreamBatches

    train_text, vocab = tiny_shakespeare("train")
    val_text, _ = tiny_shakespeare("validation")
    if args.train_chars:
        train_text = train_text[:args.train_chars]
    val_text = val_text[:args.val_chars]
    vocab.encode(args.prompt)                                         # unknown characters: an error before training
    train_ids, val_ids = vocab.encode(train_text), vocab.encode(val_text)
    train = StreamBatches(train_ids, args.batch_size, args.seq_len)
    val = StreamBatches(val_ids, args.batch_size, args.seq_len)
    baseline = unigram_bits(train_ids, val.y.ravel(), len(vocab))
    print(f"tinyshakespeare: {len(train_text):,} training characters ({train.num_batches} batches of "
          f"{args.batch_size} x {args.seq_len}), {val.tokens:,} validation characters, {len(vocab)} distinct")
    print(f"unigram baseline: {baseline:.3f} bits per character on the validation text")

    model = build_model(len(vocab), args.embedding_dim, args.units, args.seed)
    optimizer = rnnkit.optimizers.Adam(learning_rate=args.learning_rate, global_clipnorm=args.clipnorm)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["bits_per_character"])
    print(f"model: Embedding({len(vocab)}, {args.embedding_dim}) -> LSTM({args.units}) -> LSTM({args.units}) -> "
          f"Dense({len(vocab)}, softmax), {model.count_params():,} weights, stateful; {args.epochs} epoch(s)")

    val_bits: list[float] = []
    epoch_seconds: list[float] = []
    clock = {"start": time.perf_counter()}

    def on_epoch_begin(epoch, logs=None):
        clock["start"] = time.perf_counter()

    def on_epoch_end(epoch, logs=None):
        epoch_seconds.append(time.perf_counter() - clock["start"])
        val_bits.append(evaluate_stream(model, val))
        print(f"epoch {epoch + 1}/{args.epochs}: training {logs['bits_per_character']:.3f} bits/char, "
              f"validation {val_bits[-1]:.3f} bits/char ({epoch_seconds[-1]:.1f} s)", flush=True)

    t0, cpu0 = time.perf_counter(), time.process_time()
    history = model.fit(train.x, train.y, batch_size=train.batch_size, epochs=args.epochs, shuffle=False,
                        verbose=args.verbose, callbacks=[ResetStates(), rnnkit.callbacks.LambdaCallback(
                            on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end)])
    train_seconds, train_cpu = time.perf_counter() - t0, time.process_time() - cpu0

    print(f"\nSamples ({args.length} characters after {args.prompt!r}):")
    samples = {}
    for temperature in (*TEMPERATURES, 0.0):
        label = "greedy" if temperature == 0 else f"temperature {temperature}"
        text = generate(model, args.prompt, args.length, temperature=temperature, seed=args.seed, vocab=vocab)
        samples[label] = text
        print(f"--- {label} ---\n{text}\n")

    # the cost of a new character after a long context: one LSTM step (stateful) or a run over the whole context
    rerun = build_model(len(vocab), args.embedding_dim, args.units, args.seed, stateful=False)
    rerun.set_weights(model.get_weights())
    context = tiny_shakespeare("validation")[0][:args.context]
    n = 20 if args.quick else 50
    stateful_cost, stateful_text = time_per_token(model, vocab, context, n, args.seed)
    rerun_cost, rerun_text = time_per_token(rerun, vocab, context, n, args.seed)

    print(f"{'':<34}{'bits/char':>10}")
    print(f"{'unigram baseline':<34}{baseline:>10.3f}")
    for epoch, bits in enumerate(val_bits):
        print(f"{f'LSTM, validation after epoch {epoch + 1}':<34}{bits:>10.3f}")
    print(f"training time {train_seconds:.1f} s, CPU time {train_cpu:.1f} s (validation included)")
    print(f"time per new character after a {len(context)}-character context ({n} characters): stateful "
          f"{1e3 * stateful_cost:.2f} ms (one step), re-run over the context {1e3 * rerun_cost:.2f} ms; the same "
          f"text both ways: {stateful_text == rerun_text}")
    return {
        "val_bits_per_char": val_bits[-1], "val_bits_per_char_by_epoch": val_bits,
        "baseline_unigram_bits_per_char": baseline,
        "val_perplexity": 2.0 ** val_bits[-1],
        "train_bits_per_char": float(history.history["bits_per_character"][-1]),
        "train_seconds": train_seconds, "train_cpu_seconds": train_cpu, "epoch_seconds": epoch_seconds,
        "ms_per_char_stateful": 1e3 * stateful_cost, "ms_per_char_rerun": 1e3 * rerun_cost,
        "same_text_both_paths": stateful_text == rerun_text, "samples": samples,
    }


if __name__ == "__main__":
    main()
