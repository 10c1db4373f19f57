"""Softmax cross-entropy forward + backward at (1024, 10), (1024, 1000), (256, 32000) and MSE at
10M elements, 1 and 2 threads: trainkern vs NumPy (trainkern.reference) vs torch
(F.cross_entropy / F.mse_loss + backward) in the same group.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=python \\
        python -m pytest bench/bench_losses.py --benchmark-only
"""

import numpy as np
import pytest
import trainkern
from trainkern import _core
from trainkern import reference as ref

SHAPES = [(1024, 10), (1024, 1000), (256, 32000)]
THREADS = [1, 2]


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


@pytest.fixture(scope="module")
def problems():
    rng = np.random.default_rng(0)
    out = {}
    for n, c in SHAPES:
        x = (rng.standard_normal((n, c)) * 2).astype(np.float32)
        y = rng.integers(0, c, n)
        out[(n, c)] = (x, y, ref.softmax_cross_entropy(x, y))
    return out


@pytest.fixture
def threads_set():
    yield
    _core._reset_num_threads()
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(1)


def _info(benchmark, x):
    # logits read once, gradient written once
    benchmark.extra_info["bytes"] = 2 * x.nbytes
    benchmark.extra_info["GB/s"] = 2 * x.nbytes / benchmark.stats["median"] / 1e9
    benchmark.extra_info["us/call"] = benchmark.stats["median"] * 1e6


def _rounds(shape):
    return 2000 if shape[1] <= 10 else 30


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_ce_trainkern(benchmark, problems, shape, threads, threads_set):
    trainkern.set_num_threads(threads)
    benchmark.group = f"cross_entropy-{shape[0]}x{shape[1]}-{threads}t"
    x, y, (rloss, rgrad) = problems[shape]
    loss, grad = benchmark.pedantic(
        trainkern.softmax_cross_entropy, args=(x, y), rounds=_rounds(shape), warmup_rounds=3
    )
    np.testing.assert_allclose(loss, rloss, rtol=3e-6)
    np.testing.assert_allclose(grad, rgrad, rtol=1e-5, atol=1e-8)
    _info(benchmark, x)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_ce_numpy(benchmark, problems, shape):
    benchmark.group = f"cross_entropy-{shape[0]}x{shape[1]}-1t"
    x, y, (rloss, _) = problems[shape]
    loss, _ = benchmark.pedantic(
        ref.softmax_cross_entropy, args=(x, y), rounds=5 if shape[1] > 10 else 200
    )
    assert loss == rloss
    _info(benchmark, x)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_ce_torch(benchmark, problems, shape, threads, threads_set):
    torch = _torch()
    if torch is None:
        pytest.skip("torch is not installed")
    torch.set_num_threads(threads)
    benchmark.group = f"cross_entropy-{shape[0]}x{shape[1]}-{threads}t"
    x, y, (rloss, rgrad) = problems[shape]
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.from_numpy(y)

    def step():
        xt.grad = None
        loss = torch.nn.functional.cross_entropy(xt, yt)
        loss.backward()
        return loss

    loss = benchmark.pedantic(step, rounds=_rounds(shape), warmup_rounds=3)
    np.testing.assert_allclose(loss.item(), rloss, rtol=1e-5)
    np.testing.assert_allclose(xt.grad.numpy(), rgrad, rtol=1e-4, atol=1e-7)
    _info(benchmark, x)


@pytest.fixture(scope="module")
def mse_data():
    rng = np.random.default_rng(1)
    p = rng.standard_normal(10_000_000).astype(np.float32)
    t = rng.standard_normal(10_000_000).astype(np.float32)
    return p, t, ref.mse_loss(p, t)[0]


@pytest.mark.parametrize("threads", THREADS)
def test_mse_trainkern(benchmark, mse_data, threads, threads_set):
    trainkern.set_num_threads(threads)
    benchmark.group = f"mse-10M-{threads}t"
    p, t, rloss = mse_data
    loss, _ = benchmark.pedantic(trainkern.mse_loss, args=(p, t), rounds=15, warmup_rounds=2)
    np.testing.assert_allclose(loss, rloss, rtol=1e-5)
    benchmark.extra_info["GB/s"] = 12 * p.size / benchmark.stats["median"] / 1e9


def test_mse_numpy(benchmark, mse_data):
    benchmark.group = "mse-10M-1t"
    p, t, rloss = mse_data
    loss, _ = benchmark.pedantic(ref.mse_loss, args=(p, t), rounds=3)
    assert loss == rloss
    benchmark.extra_info["GB/s"] = 12 * p.size / benchmark.stats["median"] / 1e9


@pytest.mark.parametrize("threads", THREADS)
def test_mse_torch(benchmark, mse_data, threads, threads_set):
    torch = _torch()
    if torch is None:
        pytest.skip("torch is not installed")
    torch.set_num_threads(threads)
    benchmark.group = f"mse-10M-{threads}t"
    p, t, rloss = mse_data
    pt = torch.tensor(p, requires_grad=True)
    tt = torch.from_numpy(t)

    def step():
        pt.grad = None
        loss = torch.nn.functional.mse_loss(pt, tt)
        loss.backward()
        return loss

    loss = benchmark.pedantic(step, rounds=10, warmup_rounds=1)
    np.testing.assert_allclose(loss.item(), rloss, rtol=1e-4)
    benchmark.extra_info["GB/s"] = 12 * p.size / benchmark.stats["median"] / 1e9
