"""The linear layer against NumPy (OpenBLAS) and torch (F.linear), 1 and 2 threads.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE pytest bench/bench_linear.py --benchmark-only

(unset those two variables for this command only: with them OpenBLAS runs its AVX2 kernels
on this machine). Every group is one (M, K, N) shape and thread count; rates are GFLOP/s
against the FMA peak of the active target measured in the same run (trainkern.roofline),
except M == 1, a matrix-vector product bound by reading W: there the roof is one read of W
at stream bandwidth (`stream-read-W`), in GB/s. Each implementation's result is checked
against float64 before it is timed; extra_info records which OpenBLAS kernel NumPy ran.

On a shared machine, time the 1-thread groups in CPU time, which leaves out the time slices
other processes take from this one (here they took up to two thirds of the wall time):

    pytest --benchmark-only --benchmark-timer=time.thread_time \
        $(pytest bench/bench_linear.py --collect-only -q | grep -E -- '(-1|_w.1)]$')

Every implementation then runs in the calling thread (trainkern, OpenBLAS and torch at one
thread do), so its CPU time is all of its work. It is wrong at 2 threads (the other thread's
time is left out). The FMA peak that % of peak refers to is still timed on the wall clock.
"""

import numpy as np
import pytest
import trainkern
from threadpoolctl import threadpool_info, threadpool_limits
from trainkern import _core

SHAPES = [
    (1, 4096, 4096),
    (32, 4096, 4096),
    (64, 784, 256),
    (256, 784, 256),
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (4096, 4096, 4096),
]
BACKWARD_SHAPES = [(256, 784, 256), (1024, 1024, 1024)]
THREADS = [1, 2]


def _operands(m, k, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k), dtype=np.float32)
    w = rng.standard_normal((k, n), dtype=np.float32)
    b = rng.standard_normal(n, dtype=np.float32)
    return x, w, b


def _check(y, expected, k):
    # float32 sums of k terms of size ~1 against float64: well within 1e-5 * k.
    err = np.max(np.abs(np.asarray(y, np.float64) - expected)) if expected.size else 0.0
    assert err <= 1e-5 * k, err


def _f64(fn):
    """A float64 reference value, computed on one thread: OpenBLAS worker threads keep
    spinning for a while after a call and would take cores from the run timed next."""
    with threadpool_limits(1):
        return fn()


def _rounds(flops):
    return int(np.clip(3e10 / max(flops, 1), 5, 200))


def _peak(threads):
    return trainkern.roofline([threads])["peak_gflops"]["float32"][threads]


def _openblas_arch():
    return ",".join(
        str(i.get("architecture")) for i in threadpool_info() if i.get("internal_api") == "openblas"
    )


def _run(benchmark, fn, m, k, n, impl, threads, flops_factor=2):
    flops = flops_factor * m * k * n
    benchmark.extra_info.update(impl=impl, threads=threads, shape=[m, k, n])
    if m == 1:
        # Bound by reading W once: rate in GB/s of W, against the read stream.
        benchmark.extra_info.update(bytes=4 * k * n, gflop=flops / 1e9)
    else:
        benchmark.extra_info.update(flops=flops, peak_gflops=_peak(threads))
    benchmark.pedantic(fn, rounds=_rounds(flops), iterations=1, warmup_rounds=1)


def _group(kind, m, k, n, threads):
    return f"{kind}-{m}x{k}x{n}-{threads}t"


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_trainkern_linear(benchmark, set_threads, m, k, n, threads):
    benchmark.group = _group("linear", m, k, n, threads)
    set_threads(threads)
    x, w, b = _operands(m, k, n)
    out = np.empty((m, n), np.float32)
    _check(trainkern.linear(x, w, b, out=out), _f64(lambda: x.astype(np.float64) @ w + b), k)
    _run(benchmark, lambda: trainkern.linear(x, w, b, out=out), m, k, n, "trainkern", threads)


def _numpy(benchmark, m, k, n, threads, bias):
    benchmark.group = _group("linear", m, k, n, threads)
    x, w, b = _operands(m, k, n)
    with threadpool_limits(threads):
        benchmark.extra_info["openblas"] = _openblas_arch()
        fn = (lambda: x @ w + b) if bias else (lambda: x @ w)
        _check(fn(), _f64(lambda: x.astype(np.float64) @ w + (b if bias else 0)), k)
        _run(benchmark, fn, m, k, n, "numpy" if bias else "numpy-nobias", threads)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_numpy_xw_plus_b(benchmark, m, k, n, threads):
    _numpy(benchmark, m, k, n, threads, bias=True)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_numpy_xw(benchmark, m, k, n, threads):
    _numpy(benchmark, m, k, n, threads, bias=False)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_torch_linear(benchmark, set_threads, m, k, n, threads):
    torch = pytest.importorskip("torch")
    benchmark.group = _group("linear", m, k, n, threads)
    set_threads(threads)
    x, w, b = _operands(m, k, n)
    xt, bt = torch.from_numpy(x), torch.from_numpy(b)
    wt = torch.from_numpy(np.ascontiguousarray(w.T))  # torch's (out, in) weight
    f = torch.nn.functional.linear
    with torch.no_grad():
        _check(f(xt, wt, bt).numpy(), _f64(lambda: x.astype(np.float64) @ w + b), k)
        _run(benchmark, lambda: f(xt, wt, bt), m, k, n, "torch", threads)


@pytest.mark.parametrize("threads", THREADS)
def test_stream_read_w(benchmark, set_threads, threads):
    # The roof of M == 1: one pass over W at the machine's read bandwidth.
    m, k, n = SHAPES[0]
    benchmark.group = _group("linear", m, k, n, threads)
    set_threads(threads)
    _, w, _ = _operands(m, k, n)
    flat = w.reshape(-1)
    benchmark.extra_info.update(impl="stream-read-W", bytes=4 * k * n, roof=True)
    benchmark.pedantic(lambda: _core.stream_pass(0, [flat]), rounds=50, iterations=1,
                       warmup_rounds=1)


# -- backward: g = grad_y (no activation): grad_x = g W^T, grad_W = x^T g, grad_b = sum(g) --


def _backward_expected(gy, x, w):
    g = gy.astype(np.float64)
    return _f64(lambda: (g @ w.T, x.T.astype(np.float64) @ g, g.sum(0)))


def _check_backward(res, expected, m, k, n):
    for r, e, red in zip(res, expected, (n, m, m)):
        _check(r, e, red)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("m,k,n", BACKWARD_SHAPES)
def test_trainkern_backward(benchmark, set_threads, m, k, n, threads):
    benchmark.group = _group("backward", m, k, n, threads)
    set_threads(threads)
    x, w, _ = _operands(m, k, n)
    gy = np.random.default_rng(1).standard_normal((m, n), dtype=np.float32)
    fn = lambda: trainkern.linear_backward(gy, x, w)  # noqa: E731
    _check_backward(fn(), _backward_expected(gy, x, w), m, k, n)
    _run(benchmark, fn, m, k, n, "trainkern", threads, flops_factor=4)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("m,k,n", BACKWARD_SHAPES)
def test_numpy_backward(benchmark, set_threads, m, k, n, threads):
    benchmark.group = _group("backward", m, k, n, threads)
    x, w, _ = _operands(m, k, n)
    gy = np.random.default_rng(1).standard_normal((m, n), dtype=np.float32)
    fn = lambda: (gy @ w.T, x.T @ gy, gy.sum(0))  # noqa: E731
    with threadpool_limits(threads):
        benchmark.extra_info["openblas"] = _openblas_arch()
        _check_backward(fn(), _backward_expected(gy, x, w), m, k, n)
        _run(benchmark, fn, m, k, n, "numpy", threads, flops_factor=4)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("m,k,n", BACKWARD_SHAPES)
def test_torch_backward(benchmark, set_threads, m, k, n, threads):
    torch = pytest.importorskip("torch")
    benchmark.group = _group("backward", m, k, n, threads)
    set_threads(threads)
    x, w, _ = _operands(m, k, n)
    gy = np.random.default_rng(1).standard_normal((m, n), dtype=np.float32)
    xt, gt = torch.from_numpy(x), torch.from_numpy(gy)
    wt = torch.from_numpy(np.ascontiguousarray(w.T))  # torch's (out, in) weight

    def fn():  # what autograd runs for F.linear: grad_x, grad_weight, grad_bias
        return gt @ wt, gt.T @ xt, gt.sum(0)

    with torch.no_grad():
        gx, gw, gb = fn()
        _check_backward((gx.numpy(), gw.numpy().T, gb.numpy()), _backward_expected(gy, x, w),
                        m, k, n)
        _run(benchmark, fn, m, k, n, "torch", threads, flops_factor=4)
