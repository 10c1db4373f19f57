"""Fused Adam against the NumPy reference and torch.optim.Adam (fused and foreach), with the
4-read/3-write stream (28 bytes per element, Adam's traffic) measured in the same group.

    pytest bench/bench_optim.py --benchmark-only
"""

import numpy as np
import pytest

import trainkern
from trainkern import _core
from trainkern import reference as ref

SIZES = [1_000_000, 10_000_000, 50_000_000]
THREADS = [1, 2]
BYTES_PER_ELEMENT = 28  # read p, g, m, v; write p, m, v
KW = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01)


def _state(n, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)
    m = np.zeros(n, np.float32)
    v = np.zeros(n, np.float32)
    return p, g, m, v


def _check_one_step(run, n):
    """Run one step through `run` and compare with the reference before timing anything."""
    n = min(n, 100_003)
    a = _state(n, seed=1)
    b = [x.copy() for x in a]
    run(*a)
    ref.adam_step(*b, step=1, **KW)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-6)


def _rounds(n):
    return 30 if n <= 1_000_000 else 10 if n <= 10_000_000 else 5


def _pedantic(benchmark, fn, n, impl, roof=False):
    benchmark.extra_info.update(impl=impl, bytes=BYTES_PER_ELEMENT * n, roof=roof)
    benchmark.pedantic(fn, rounds=_rounds(n), iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n", SIZES)
def test_stream_4r3w(benchmark, set_threads, n, threads):
    benchmark.group = f"adam-f32-{n:,}-{threads}t"
    set_threads(threads)
    x = _state(n)
    _pedantic(benchmark, lambda: _core.stream_pass(3, list(x)), n, "stream", roof=True)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n", SIZES)
def test_trainkern(benchmark, set_threads, n, threads):
    benchmark.group = f"adam-f32-{n:,}-{threads}t"
    set_threads(threads)
    _check_one_step(lambda p, g, m, v: trainkern.adam_step(p, g, m, v, step=1, **KW), n)
    p, g, m, v = _state(n)
    _pedantic(benchmark, lambda: trainkern.adam_step(p, g, m, v, step=10, **KW), n, "trainkern")


@pytest.mark.parametrize("threads", [1])
@pytest.mark.parametrize("n", SIZES)
def test_numpy_reference(benchmark, set_threads, n, threads):
    benchmark.group = f"adam-f32-{n:,}-{threads}t"
    _check_one_step(lambda p, g, m, v: ref.adam_step(p, g, m, v, step=1, **KW), n)
    p, g, m, v = _state(n)
    _pedantic(benchmark, lambda: ref.adam_step(p, g, m, v, step=10, **KW), n, "numpy")


def _torch_adam(torch, n, mode, seed=0):
    p, g, _, _ = _state(n, seed)
    tp = torch.nn.Parameter(torch.from_numpy(p))
    tp.grad = torch.from_numpy(g)
    opt = torch.optim.Adam([tp], lr=KW["lr"], betas=(KW["beta1"], KW["beta2"]), eps=KW["eps"],
                           weight_decay=KW["weight_decay"], **{mode: True})
    return tp, opt


@pytest.mark.parametrize("mode", ["fused", "foreach"])
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n", SIZES)
def test_torch(benchmark, set_threads, n, threads, mode):
    torch = pytest.importorskip("torch")
    benchmark.group = f"adam-f32-{n:,}-{threads}t"
    set_threads(threads)

    def one_step(p, g, m, v):
        tp, opt = _torch_adam(torch, p.size, mode, seed=1)
        opt.step()
        p[...] = tp.detach().numpy()

    _check_one_step(one_step, n)
    tp, opt = _torch_adam(torch, n, mode)
    _pedantic(benchmark, opt.step, n, f"torch-{mode}")


# Per-call overhead: a 1,000-element step is all overhead (the arithmetic takes ~0.1 us).
@pytest.mark.parametrize("impl", ["trainkern", "numpy", "torch-fused"])
def test_overhead_1000(benchmark, set_threads, impl):
    benchmark.group = "adam-f32-1,000-overhead"
    benchmark.extra_info.update(impl=impl, bytes=BYTES_PER_ELEMENT * 1000)
    set_threads(1)
    p, g, m, v = _state(1000)
    if impl == "trainkern":
        _check_one_step(lambda p, g, m, v: trainkern.adam_step(p, g, m, v, step=1, **KW), 1000)
        benchmark(lambda: trainkern.adam_step(p, g, m, v, step=10, **KW))
    elif impl == "numpy":
        benchmark(lambda: ref.adam_step(p, g, m, v, step=10, **KW))
    else:
        torch = pytest.importorskip("torch")
        tp, opt = _torch_adam(torch, 1000, "fused")
        benchmark(opt.step)
