"""The Shakespeare demo's model in PyTorch, trained the same way, for comparison with ``rnnkit demo shakespeare``.

``python benchmarks/shakespeare_torch.py [--quick] [--threads 2] [same options as the demo]``

Same data (``rnnkit.datasets.tiny_shakespeare``, the same 90/10 split and character slices), same
layout (``rnnkit.text.StreamBatches``: batch ``j`` is the ``j``-th window of every row), same
model (``Embedding -> 2-layer LSTM -> Linear``, softmax cross-entropy), same truncated BPTT (the
state carried from batch to batch, detached, reset at each epoch), same optimizer (Adam, the
demo's learning rate, Keras' epsilon 1e-7, the gradients' global norm clipped) and epochs. It
prints the validation bits per character after each epoch (the validation stream read from a
reset state) and the training time. The initial weights are PyTorch's own, so the figures agree
with the demo's in kind, not to the digit.
"""

from __future__ import annotations

import argparse
import math
import time


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--units", type=int, default=None)
    p.add_argument("--embedding-dim", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--train-chars", type=int, default=None)
    p.add_argument("--val-chars", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--clipnorm", type=float, default=5.0)
    args = p.parse_args(argv)
    for name, full, small in (("epochs", 5, 1), ("units", 128, 48), ("embedding_dim", 32, 16),
                              ("batch_size", 16, 8), ("seq_len", 64, 16), ("train_chars", 0, 40_000),
                              ("val_chars", 40_000, 10_000), ("learning_rate", 0.002, 0.01)):
        if getattr(args, name) is None:
            setattr(args, name, small if args.quick else full)

    import torch

    from rnnkit.datasets import tiny_shakespeare
    from rnnkit.text import StreamBatches

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_text, vocab = tiny_shakespeare("train")
    val_text, _ = tiny_shakespeare("validation")
    if args.train_chars:
        train_text = train_text[:args.train_chars]
    train = StreamBatches(vocab.encode(train_text), args.batch_size, args.seq_len)
    val = StreamBatches(vocab.encode(val_text[:args.val_chars]), args.batch_size, args.seq_len)
    V = len(vocab)

    class CharLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(V, args.embedding_dim)
            self.lstm = torch.nn.LSTM(args.embedding_dim, args.units, num_layers=2, batch_first=True)
            self.head = torch.nn.Linear(args.units, V)

        def forward(self, x, state):
            h, state = self.lstm(self.embedding(x), state)      # (B, T, H)
            return self.head(h), state                           # (B, T, V) logits

    model = CharLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=args.learning_rate, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    def batches(stream):
        for x, y in stream:
            yield torch.from_numpy(x), torch.from_numpy(y)

    def val_bits() -> float:
        model.eval()
        total, state = 0.0, None
        with torch.no_grad():
            for x, y in batches(val):
                logits, state = model(x, state)
                total += float(loss_fn(logits.reshape(-1, V), y.reshape(-1))) * y.numel()
        model.train()
        return total / val.tokens / math.log(2.0)

    n_params = sum(p.numel() for p in model.parameters())
    print(f"PyTorch {torch.__version__}, {args.threads} thread(s): Embedding({V}, {args.embedding_dim}) -> "
          f"LSTM({args.units}) x 2 -> Linear({V}), {n_params:,} weights; {train.num_batches} batches of "
          f"{args.batch_size} x {args.seq_len}, {args.epochs} epoch(s)")
    bits, t0, cpu0 = [], time.perf_counter(), time.process_time()
    for epoch in range(args.epochs):
        state, e0, seen, total = None, time.perf_counter(), 0, 0.0
        for x, y in batches(train):
            if state is not None:
                state = tuple(s.detach() for s in state)             # truncated BPTT: no gradient into the past
            logits, state = model(x, state)
            loss = loss_fn(logits.reshape(-1, V), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clipnorm)
            opt.step()
            total += float(loss.detach()) * y.numel()
            seen += y.numel()
        train_seconds = time.perf_counter() - e0
        bits.append(val_bits())
        print(f"epoch {epoch + 1}/{args.epochs}: training {total / seen / math.log(2.0):.3f} bits/char, validation "
              f"{bits[-1]:.3f} bits/char ({train_seconds:.1f} s)", flush=True)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(f"validation bits/char {bits[-1]:.3f}; training time {seconds:.1f} s, CPU time {cpu:.1f} s "
          "(validation included)")
    return {"val_bits_per_char": bits[-1], "seconds": seconds, "cpu_seconds": cpu, "params": n_params,
            "val_bits_per_char_by_epoch": bits, "seed": args.seed}


if __name__ == "__main__":
    main()
