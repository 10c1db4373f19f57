"""`python -m trainkern`: show the configuration and run a short Adam demo.

Subcommands: `info` (the build and dispatch state only). The full training job replaces
the demo once the linear, activation and loss kernels land.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args(argv)
    trainkern.show_config()
    if args.command is None:
        _adam_demo(n=1_000_000, steps=20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
