"""`python -m trainkern`: train a small network on handwritten digits with trainkern's kernels.

Subcommands: `train` (the default), `info` (build and dispatch state), `bench` (kernel-by-kernel
timings against NumPy and torch, as % of this machine's roofline) and `report` (the same table
and plot from a pytest-benchmark JSON file).
"""

from __future__ import annotations

import argparse
import json

import trainkern


def _hidden(text: str) -> tuple:
    try:
        sizes = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden wants sizes like 256,128, got {text!r}")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--hidden wants positive sizes, got {text!r}")
    return sizes


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=30, help="passes over the training set (30)")
    p.add_argument("--batch-size", type=int, default=64, help="examples per step (64)")
    p.add_argument("--hidden", type=_hidden, default=(256, 128),
                   help="hidden layer sizes, comma separated (256,128)")
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam",
                   help="adam, adamw (decoupled weight decay 1e-4) or sgd (momentum 0.9)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (1e-3 for adam/adamw, 5e-2 for sgd)")
    # Every kernel call of this small model lasts 2-200 us: too short to gain much from a
    # second core, and on a shared machine a parallel region can wait a whole time slice
    # for a thread the scheduler gave away (measured: 10 ms per epoch on 1 thread, over
    # 100 ms on 2 while other jobs ran).
    p.add_argument("--threads", type=int, default=1,
                   help="threads for trainkern, torch and NumPy's BLAS (1: this model's "
                        "kernels are too short to split well)")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, init and order")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="trainkern", description=__doc__.splitlines()[0],
        epilog="With no subcommand, trains the 64-256-128-10 MLP (the train subcommand).")
    _add_train_options(parser)
    sub = parser.add_subparsers(dest="command")
    train = sub.add_parser("train", help="train the MLP (the default)")
    _add_train_options(train)
    sub.add_parser("info", help="print the build and dispatch configuration")
    bench = sub.add_parser("bench", help="time every kernel against NumPy and torch")
    bench.add_argument("--quick", action="store_true", help="smaller sizes; under a minute")
    bench.add_argument("--threads", type=int, default=None,
                       help="threads for trainkern and torch (default: all available)")
    bench.add_argument("--family", action="append", default=None,
                       help="only this kernel family (repeatable): optim, ...")
    bench.add_argument("--json", metavar="PATH", help="write the results as JSON")
    bench.add_argument("--plot", metavar="PATH.png", help="draw the results (needs matplotlib)")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    report = sub.add_parser("report", help="table (and plot) from a pytest-benchmark JSON")
    report.add_argument("path", help="file written by pytest --benchmark-json or autosave")
    report.add_argument("--plot", metavar="PATH.png", help="draw the results")
    args = parser.parse_args(argv)

    if args.command == "bench":
        return _bench(args)
    if args.command == "report":
        from trainkern import _report

        data = _report.from_pytest_benchmark(args.path)
        print(_report.format_table(data))
        if args.plot:
            _report.plot(data, args.plot)
        return 0
    if args.command == "info":
        trainkern.show_config()
        return 0
    return _train(args)


def _train(args) -> int:
    from trainkern import _train as t

    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1")
    if args.threads < 1:
        raise SystemExit("--threads must be >= 1")
    trainkern.set_num_threads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    lr = args.lr if args.lr is not None else (5e-2 if args.optimizer == "sgd" else 1e-3)
    cfg = t.Config(hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size,
                   optimizer=args.optimizer, lr=lr, seed=args.seed)
    with _blas_threads(args.threads):
        t.train(cfg)
    return 0


def _blas_threads(n):
    """NumPy's BLAS (the reference's matmul) on the same thread count, via threadpoolctl."""
    import contextlib

    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def _bench(args) -> int:
    from trainkern import _bench, _report

    selected = [c for c in _bench.cases(args.quick)
                if args.family is None or c.family in args.family]
    if not selected:
        raise SystemExit(f"no benchmark case in families {args.family}")
    threads = args.threads or trainkern.get_num_threads()
    data = _bench.run(selected, threads, args.quick, progress=not args.no_progress)
    print(_report.format_table(data))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1, default=str)
    if args.plot:
        _report.plot(data, args.plot)
        print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
