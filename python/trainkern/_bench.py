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


def _elementwise_case(name, n, tk, numpy_fn, torch_fn, inputs, nbytes, roof, scale=3.0):
    """A memory-bound activation: `inputs` arrays of n float32 in (normal, of scale `scale`),
    one array out."""

    def setup():
        rng = np.random.default_rng(2)
        args = [rng.standard_normal(n, dtype=np.float32) * scale for _ in range(inputs)]
        out = np.empty(n, np.float32)
        tk(*args, out=out)
        np.testing.assert_allclose(out[:4096], numpy_fn(*[a[:4096] for a in args]),
                                   rtol=2e-5, atol=2e-6)
        impls = {"trainkern": lambda: tk(*args, out=out), "numpy": lambda: numpy_fn(*args)}
        torch = _torch()
        if torch is not None and torch_fn is not None:
            targs = [torch.from_numpy(a) for a in args]
            tout = torch.from_numpy(np.empty(n, np.float32))
            impls["torch"] = lambda: torch_fn(torch, targs, tout)
        return impls

    return Case("activations", name, f"{n:,} f32", setup, bytes=nbytes * n, roof=roof)


def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_gelu(x):
    from math import sqrt

    from numpy import tanh

    return 0.5 * x * (1.0 + tanh(np.float32(sqrt(2.0 / np.pi)) * (x + 0.044715 * x * x * x)))


def _gelu_tanh_case(name, n, scale):
    return _elementwise_case(name, n, lambda x, out: trainkern.gelu(x, "tanh", out=out),
                             _np_gelu,
                             lambda t, a, o: t.nn.functional.gelu(a[0], approximate="tanh"),
                             1, 8, "copy", scale=scale)


def _activation_cases(n):
    return [
        _elementwise_case("relu", n, trainkern.relu, lambda x: np.maximum(x, 0),
                          lambda t, a, o: t.clamp_min(a[0], 0, out=o), 1, 8, "copy"),
        _elementwise_case("sigmoid", n, trainkern.sigmoid, _np_sigmoid,
                          lambda t, a, o: t.sigmoid(a[0], out=o), 1, 8, "copy"),
        # GELU on inputs of scale 3 runs its general form, on unit-scale inputs mostly its
        # tables (AVX-512): both
        _gelu_tanh_case("gelu (tanh)", n, 3.0),
        _gelu_tanh_case("gelu (tanh) N(0,1)", n, 1.0),
        _elementwise_case("sigmoid_backward", n, trainkern.sigmoid_backward,
                          lambda g, y: g * y * (1 - y),
                          lambda t, a, o: t.ops.aten.sigmoid_backward(a[0], a[1]), 2, 12,
                          "triad"),
    ]


def _ce_case(rows, classes):
    def setup():
        rng = np.random.default_rng(3)
        logits = rng.standard_normal((rows, classes), dtype=np.float32)
        labels = rng.integers(0, classes, rows)
        grad = np.empty_like(logits)
        loss, g = trainkern.softmax_cross_entropy(logits, labels)
        rl, rg = ref.softmax_cross_entropy(logits, labels)
        np.testing.assert_allclose(g, rg, rtol=1e-4, atol=1e-7)

        def numpy_ce():
            z = logits - logits.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            loss = -np.mean(np.log(p[np.arange(rows), labels]))
            p[np.arange(rows), labels] -= 1.0
            return loss, p / rows

        impls = {"trainkern": lambda: trainkern.softmax_cross_entropy(logits, labels, out=grad),
                 "numpy": numpy_ce}
        torch = _torch()
        if torch is not None:
            tl, ty = torch.from_numpy(logits), torch.from_numpy(labels)

            def torch_ce():
                x = tl.detach().requires_grad_(True)
                torch.nn.functional.cross_entropy(x, ty).backward()
                return x.grad

            impls["torch"] = torch_ce
        return impls

    return Case("losses", "softmax_cross_entropy", f"({rows},{classes}) f32", setup,
                bytes=8.0 * rows * classes, roof="copy")


def _linear_case(m, k, n, activation="relu"):
    def setup():
        rng = np.random.default_rng(4)
        x = rng.standard_normal((m, k), dtype=np.float32)
        w = rng.standard_normal((k, n), dtype=np.float32) / np.float32(np.sqrt(k))
        b = rng.standard_normal(n, dtype=np.float32)
        out = np.empty((m, n), np.float32)
        expected = np.maximum(x.astype(np.float64) @ w + b, 0)
        got = trainkern.linear(x, w, b, activation=activation)
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.sqrt(k))
        impls = {"trainkern": lambda: trainkern.linear(x, w, b, activation=activation, out=out),
                 "numpy": lambda: np.maximum(x @ w + b, 0)}
        torch = _torch()
        if torch is not None:
            tx, tw, tb = (torch.from_numpy(a) for a in (x, w.T.copy(), b))
            impls["torch"] = lambda: torch.relu(torch.nn.functional.linear(tx, tw, tb))
        return impls

    return Case("linear", f"linear+bias+{activation}", f"{m}x{k}x{n} f32", setup,
                flops=2.0 * m * k * n, roof="fma")


def stream_elements(quick: bool) -> int:
    """Array length of the memory-bound cases and of the roofline streams: the same, so a
    kernel is compared with a stream of the same working set (several times the L3)."""
    return 1 << 23 if quick else 1 << 24


def cases(quick: bool) -> list[Case]:
    big = stream_elements(quick)
    out = [_adam_case(big), _adam_case(1000), _sgd_case(big)]
    out += _activation_cases(big)
    out += [_ce_case(1024, 10), _ce_case(1024, 1000)] + ([] if quick else [_ce_case(256, 32000)])
    shapes = [(64, 784, 256), (256, 784, 256), (1024, 1024, 1024)]
    if not quick:
        shapes += [(2048, 2048, 2048)]
    out += [_linear_case(*s) for s in shapes]
    return out


def time_calls(impls: dict, min_time: float, min_reps: int = 5, settle: float = 0.0) -> dict:
    """Median seconds per call of each implementation, sampled round-robin so that a
    neighbour's load drifting over time hits all of them alike; at least `min_reps` rounds
    and `min_time` seconds per implementation. A round is one call of each, or, with
    `settle` (several threads), a block of calls of each taking min_time / min_reps, after a
    pause of `settle` seconds and one untimed call: the worker threads of the previous
    implementation (OpenBLAS's, torch's, trainkern's) spin for a while after its last call,
    and a team that starts meanwhile shares the cores with them (2 threads, 1024^3: either
    side timed at about one core's speed)."""
    for fn in impls.values():
        fn()
    samples = {name: [] for name in impls}
    spent = dict.fromkeys(impls, 0.0)
    block = min_time / min_reps if settle else 0.0
    rounds = 0
    while rounds < min_reps or min(spent.values()) < min_time:
        for name, fn in impls.items():
            if settle:
                time.sleep(settle)
                fn()
            until = spent[name] + block
            while True:
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                samples[name].append(dt)
                spent[name] += dt
                if spent[name] >= until:
                    break
        rounds += 1
        if rounds >= 10_000:
            break
    return {name: float(np.median(v)) for name, v in samples.items()}


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


def _blas_limit(threads):
    """NumPy's BLAS on the same thread count as the rest (threadpoolctl, when installed)."""
    import contextlib

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        ctx = contextlib.nullcontext()
    else:
        ctx = threadpool_limits(limits=threads, user_api="blas")
    ctx.__enter__()
    return ctx


def run(selected: list[Case], threads: int, quick: bool, progress: bool = True) -> dict:
    """Time every case at `threads` threads; returns {"environment", "roofline", "results"}."""
    previous = _core.get_num_threads()
    trainkern.set_num_threads(threads)
    torch = _torch()
    torch_threads = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(threads)
    blas = _blas_limit(threads)
    try:
        roof = trainkern.roofline(threads=(threads,), elements=stream_elements(quick))
        results = []
        bar = Progress(len(selected), progress)
        for case in selected:
            impls = case.setup()
            times = time_calls(impls, 0.05 if quick else 0.3, settle=0.3 if threads > 1 else 0.0)
            results.append(_row(case, times, roof, threads))
            bar.step(f"{case.kernel} {case.shape}")
    finally:
        blas.__exit__(None, None, None)
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
