"""`python -m trainkern`: show the configuration and run a short Adam demo.

Subcommands: `info` (the build and dispatch state), `bench` (kernel-by-kernel timings
against NumPy and torch, as % of this machine's roofline) and `report` (the same table and
plot from a pytest-benchmark JSON file).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import trainkern
from trainkern import reference


def _adam_demo(n: int, steps: int) -> None:
    """Minimise 0.5 * ||w - target||^2 by Adam, with trainkern and with the NumPy reference."""
    rng = np.random.default_rng(0)
    target = rng.standard_normal(n).astype(np.float32)
    print(f"\nAdam demo: {n:,} parameters, {steps} steps (optimizer time only)")
    for name, step_fn in (("trainkern", trainkern.adam_step), ("numpy ref", reference.adam_step)):
        w = np.zeros(n, np.float32)
        m = np.zeros_like(w)
        v = np.zeros_like(w)
        grad = np.empty_like(w)
        update_time = 0.0
        for t in range(1, steps + 1):
            np.subtract(w, target, out=grad)
            t0 = time.perf_counter()
            step_fn(w, grad, m, v, step=t, lr=0.05)
            update_time += time.perf_counter() - t0
        loss = 0.5 * float(np.sum((w - target) ** 2))
        print(f"  {name:<10} final loss {loss:12.6g}   {update_time / steps * 1e3:8.3f} ms/step")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="trainkern", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
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
    trainkern.show_config()
    if args.command is None:
        _adam_demo(n=1_000_000, steps=20)
    return 0


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
