"""Engine of `python -m trainkern bench`: kernel-by-kernel timings against NumPy and torch,
as rates (GB/s or GFLOP/s) and as a fraction of the machine's roofline.

A Case builds its arrays once and hands out one callable per implementation; each callable
is checked against the reference before it is timed.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import trainkern
from trainkern import reference as ref

from . import _core


@dataclass
class Case:
    family: str
    kernel: str
    shape: str
    setup: Callable[[], dict]  # -> {impl: zero-argument callable}
    bytes: float = 0.0  # memory traffic per call (memory-bound kernels)
    flops: float = 0.0  # arithmetic per call (compute-bound kernels)
    roof: str = "adam"  # stream name in roofline()["bandwidth_gbs"], or "fma"
    check: Callable[[dict], None] | None = None
    notes: dict = field(default_factory=dict)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _adam_case(n: int) -> Case:
    kw = dict(lr=1e-3, weight_decay=0.01)

    def setup():
        rng = np.random.default_rng(0)
        p, g = (rng.standard_normal(n, dtype=np.float32) for _ in range(2))
        m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
        a = [x.copy() for x in (p, g, m, v)]
        b = [x.copy() for x in (p, g, m, v)]
        trainkern.adam_step(*a, step=1, **kw)
        ref.adam_step(*b, step=1, **kw)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-6)
        impls = {
            "trainkern": lambda: trainkern.adam_step(p, g, m, v, step=10, **kw),
            "numpy": lambda: ref.adam_step(p, g, m, v, step=10, **kw),
        }
        torch = _torch()
        if torch is not None:
            tp = torch.nn.Parameter(torch.from_numpy(p.copy()))
            tp.grad = torch.from_numpy(g)
            opt = torch.optim.Adam([tp], fused=True, **kw)
            impls["torch"] = opt.step
        return impls

    return Case("optim", "adam_step", f"{n:,} f32", setup, bytes=28.0 * n, roof="adam")


def _sgd_case(n: int) -> Case:
    kw = dict(lr=1e-2, momentum=0.9)

    def setup():
        rng = np.random.default_rng(1)
        p, g = (rng.standard_normal(n, dtype=np.float32) for _ in range(2))
        buf = np.zeros(n, np.float32)
        impls = {
            "trainkern": lambda: trainkern.sgd_step(p, g, buf, **kw),
            "numpy": lambda: ref.sgd_step(p, g, buf, **kw),
        }
        torch = _torch()
        if torch is not None:
            tp = torch.nn.Parameter(torch.from_numpy(p.copy()))
            tp.grad = torch.from_numpy(g)
            opt = torch.optim.SGD([tp], fused=True, **kw)
            impls["torch"] = opt.step
        return impls

    # reads param, grad, buffer; writes param, buffer
    return Case("optim", "sgd_step (momentum)", f"{n:,} f32", setup, bytes=20.0 * n, roof="adam")


def stream_elements(quick: bool) -> int:
    """Array length of the memory-bound cases and of the roofline streams: the same, so a
    kernel is compared with a stream of the same working set (several times the L3)."""
    return 1 << 23 if quick else 1 << 24


def cases(quick: bool) -> list[Case]:
    big = stream_elements(quick)
    return [_adam_case(big), _adam_case(1000), _sgd_case(big)]


def time_call(fn: Callable[[], object], min_time: float, min_reps: int = 5) -> float:
    """Median seconds per call over at least `min_reps` calls and `min_time` seconds."""
    fn()
    samples = []
    start = time.perf_counter()
    while len(samples) < min_reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        if len(samples) >= 10_000:
            break
    return float(np.median(samples))


class Progress:
    """A one-line text progress bar on stderr (no dependency)."""

    def __init__(self, total: int, enabled: bool = True, width: int = 30):
        self.total, self.done, self.width = total, 0, width
        self.enabled = enabled and total > 0 and sys.stderr.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        sys.stderr.write(f"\r[{bar}] {self.done}/{self.total} {label[:40]:<40}")
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def environment() -> dict:
    cpu = _core.cpu_info()
    env = {
        "cpu": cpu["brand"] or cpu["vendor"],
        "isa": trainkern.isa(),
        "threads": trainkern.get_num_threads(),
        "trainkern": trainkern.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    torch = _torch()
    if torch is not None:
        env["torch"] = torch.__version__
    return env


def run(selected: list[Case], threads: int, quick: bool, progress: bool = True) -> dict:
    """Time every case at `threads` threads; returns {"environment", "roofline", "results"}."""
    previous = _core.get_num_threads()
    trainkern.set_num_threads(threads)
    torch = _torch()
    torch_threads = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        roof = trainkern.roofline(threads=(threads,), elements=stream_elements(quick))
        results = []
        bar = Progress(len(selected), progress)
        for case in selected:
            impls = case.setup()
            times = {name: time_call(fn, 0.05 if quick else 0.3) for name, fn in impls.items()}
            results.append(_row(case, times, roof, threads))
            bar.step(f"{case.kernel} {case.shape}")
    finally:
        _core.set_num_threads(previous)
        if torch is not None:
            torch.set_num_threads(torch_threads)
    env = environment()
    env["threads"] = threads
    return {"environment": env, "roofline": roof, "results": results}


def _row(case: Case, times: dict, roof: dict, threads: int) -> dict:
    if case.flops:
        work, unit = case.flops, "GFLOP/s"
        roof_rate = roof["peak_gflops"]["float32"][threads]
    else:
        work, unit = case.bytes, "GB/s"
        roof_rate = roof["bandwidth_gbs"][case.roof][threads]
    rates = {name: work / t / 1e9 for name, t in times.items()}
    tk = times["trainkern"]
    return {
        "family": case.family,
        "kernel": case.kernel,
        "shape": case.shape,
        "unit": unit,
        "roof": "fma peak" if case.flops else f"{case.roof} stream",
        "roof_rate": roof_rate,
        "seconds": times,
        "rate": rates,
        "pct_of_roof": {name: 100.0 * r / roof_rate for name, r in rates.items()},
        "speedup": {name: t / tk for name, t in times.items() if name != "trainkern"},
    }
