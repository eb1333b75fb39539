"""The ``rnnkit`` command line (also ``python -m rnnkit``)."""

from __future__ import annotations

import argparse
import sys

from rnnkit import __version__
from rnnkit.kernels import kernels_info


def _demo(args: argparse.Namespace) -> int:
    from rnnkit.demo import DemoConfig, run_demo

    if args.list:
        return _list_demos()
    cfg = DemoConfig(seed=args.seed, epochs=args.epochs, text=args.text, length=args.length,
                     start=args.start, verbose=args.verbose, seq_length=args.seq_length)
    result = run_demo(cfg)
    print(f"Final training accuracy: {result.accuracy:.4f}, loss: {result.history['loss'][-1]:.4f}; "
          f"trained {cfg.epochs} epochs in {result.train_seconds:.2f} s")
    return 0


def _list_demos() -> int:
    from rnnkit.examples import demos

    found = demos()
    width = max(map(len, found), default=0)
    print(f"rnnkit demo {'':<{width}} the article's program: a character-level SimpleRNN on one sentence")
    for name, description in found.items():
        print(f"rnnkit demo {name:<{width}} {description}")
    print("Each takes --quick (a seconds-long run) and --help; e.g. rnnkit demo digits --help.")
    return 0


def _run_named_demo(name: str, argv: list[str]) -> int:
    from rnnkit.examples import get

    get(name)(argv)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from rnnkit.bench import main as bench_main

    rest = [a for a in args.args if a != "--"]
    return bench_main(rest)


def _diagnose(args: argparse.Namespace) -> int:
    from rnnkit.diagnostics.demonstration import DiagnoseConfig, run_diagnose

    try:   # fail before training, not after
        import matplotlib  # noqa: F401
    except ImportError:
        print("rnnkit diagnose: error: the plots need matplotlib: pip install 'rnnkit[plot]' "
              "(or pip install matplotlib).", file=sys.stderr)
        return 2
    for name in ("steps", "epochs", "units"):
        if getattr(args, name) < (2 if name == "steps" else 1):
            raise ValueError(f"--{name} must be at least {2 if name == 'steps' else 1}, got {getattr(args, name)}.")
    cfg = DiagnoseConfig(steps=args.steps, seed=args.seed, out_dir=args.out, epochs=args.epochs, units=args.units)
    run_diagnose(cfg)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from rnnkit.demo import ARTICLE_TEXT

    parser = argparse.ArgumentParser(prog="rnnkit", description="Recurrent neural networks, exact and readable.")
    parser.add_argument("--version", action="version", version=_version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="train the article's character-level SimpleRNN and generate text; "
                                       "rnnkit demo NAME runs one of the applications (rnnkit demo --list)",
                          usage="rnnkit demo [--list | NAME [options]] [options]",
                          description="Train SimpleRNN(50, relu) + Dense softmax with Adam on one sentence "
                                      "(windows of 3 characters predict the 4th), then generate text greedily. "
                                      "With a NAME, run that application instead (rnnkit demo --list names them).")
    demo.add_argument("--list", action="store_true", help="name the application demos and exit")
    demo.add_argument("--seed", type=int, default=0, help="seed for weights and shuffling (default: 0)")
    demo.add_argument("--epochs", type=int, default=100, help="training epochs (default: 100)")
    demo.add_argument("--text", default=ARTICLE_TEXT, help="training text (default: the article's sentence)")
    demo.add_argument("--seq-length", type=int, default=3, help="characters per input window (default: 3)")
    demo.add_argument("--length", type=int, default=50, help="characters to generate (default: 50)")
    demo.add_argument("--start", default=None, help="text to start generating from (default: 'This is G')")
    demo.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                      help="0 silent, 1 progress bar (default), 2 one line per epoch")
    demo.set_defaults(func=_demo)
    bench = sub.add_parser("bench", help="benchmark against PyTorch (and Keras) in one run; needs torch",
                           description="Run the benchmark suite; arguments go to it (rnnkit bench -- --help).")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the suite, e.g. --quick")
    bench.set_defaults(func=_bench)
    diagnose = sub.add_parser(
        "diagnose", help="watch the gradient vanish in a SimpleRNN and the gates of LSTM and GRU keep it",
        description="Train SimpleRNN, LSTM and GRU briefly on the adding problem (a long-range dependency), "
                    "print how much gradient reaches the first step before and after training, and write "
                    "the plots as PNG files (needs matplotlib: pip install 'rnnkit[plot]').")
    diagnose.add_argument("--out", default=".", help="folder for the PNG files (default: the current one)")
    diagnose.add_argument("--steps", type=int, default=100, help="sequence length T (default: 100)")
    diagnose.add_argument("--seed", type=int, default=0, help="seed for data, weights and shuffling (default: 0)")
    diagnose.add_argument("--epochs", type=int, default=20, help="training epochs of 1024 sequences (default: 20)")
    diagnose.add_argument("--units", type=int, default=32, help="units of each recurrent layer (default: 32)")
    diagnose.set_defaults(func=_diagnose)
    return parser


def _version_text() -> str:
    """``rnnkit 0.1.0 (recurrent core: kernel, avx2, 2 threads)`` or ``(... numpy: <why>)``."""
    info = kernels_info()
    if info["path"] == "kernel":
        return f"rnnkit {__version__} (recurrent core: compiled kernels, {info['isa']}, {info['threads']} threads)"
    return f"rnnkit {__version__} (recurrent core: NumPy reference; {info['reason']})"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["demo"] and len(argv) > 1 and (argv[1] == "--list" or not argv[1].startswith("-")):
        try:   # rnnkit demo NAME [options of that demo]
            return _list_demos() if argv[1] == "--list" else _run_named_demo(argv[1], argv[2:])
        except (ValueError, TypeError, ImportError) as exc:
            print(f"rnnkit demo: error: {exc}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ValueError, TypeError) as exc:
        print(f"rnnkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
