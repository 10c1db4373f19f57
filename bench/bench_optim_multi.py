"""Multi-tensor Adam (one call for all tensors of a model) against torch.optim.Adam fused,
foreach and for-loop, on 1 thread, for models of many small tensors:

    2,000 tensors of 1,000 float32 elements   (per-tensor overhead dominates)
      200 tensors of 10,000 float32 elements

    pytest bench/bench_optim_multi.py --benchmark-only

Rows of one group:
- trainkern:        trainkern.adam_step_multi on torch fused Adam's own tensors (NumPy
                    views of its parameters, gradients and state: the same memory);
- trainkern-optim:  trainkern.optim.Adam over NumPy arrays (its state in one buffer);
- trainkern-torch:  trainkern.torch.Adam on torch parameters, gradients kept between steps
                    (zero_grad(set_to_none=False), DDP bucket views) or replaced by new
                    tensors every step (the default zero_grad);
- torch-fused / torch-foreach / torch-forloop: torch.optim.Adam;
- numpy:            the NumPy reference, one adam_step per tensor;
- stream:           the 4-read/3-write stream over the same total size (the roof).
Each benchmark replays the NumPy reference on a few of its tensors for the number of steps
it ran and checks the result.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import trainkern
from trainkern import _core, optim
from trainkern import reference as ref

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tolerances import assert_close  # noqa: E402

SHAPES = [(2000, 1000), (200, 10_000)]
BYTES_PER_ELEMENT = 28  # read p, g, m, v; write p, m, v
LR = 1e-3
CHECKED = (0, 1, -1)  # tensors replayed with the reference


class Problem:
    """The initial parameters and two gradient sets (A, B) of one shape."""

    def __init__(self, n, size):
        rng = np.random.default_rng(n * size)
        self.n, self.size = n, size
        self.init = [rng.standard_normal(size, dtype=np.float32) for _ in range(n)]
        self.grads = [[rng.standard_normal(size, dtype=np.float32) for _ in range(n)]
                      for _ in range(2)]

    def check(self, got, grad_sets, op):
        """`got(i)`: tensor i after the steps, which used grad_sets[t] at step t+1."""
        for i in CHECKED:
            p = self.init[i].copy()
            m, v = np.zeros_like(p), np.zeros_like(p)
            for t, s in enumerate(grad_sets, start=1):
                ref.adam_step(p, self.grads[s][i], m, v, step=t, lr=LR)
            assert_close(got(i), p, op, np.float32, err_msg=f"tensor {i} after "
                         f"{len(grad_sets)} steps")


_PROBLEMS = {}


def problem(shape):
    if shape not in _PROBLEMS:
        _PROBLEMS.clear()  # one shape in memory at a time
        _PROBLEMS[shape] = Problem(*shape)
    return _PROBLEMS[shape]


def run(benchmark, set_threads, shape, impl, fn, rounds=40, roof=False):
    n, size = shape
    benchmark.group = f"adam-multi-f32-{n}x{size:,}-1t"
    benchmark.extra_info.update(impl=impl, bytes=BYTES_PER_ELEMENT * n * size, roof=roof,
                                tensors=n)
    set_threads(1)
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=2)
    benchmark.extra_info["us_per_tensor"] = benchmark.stats.stats.median / n * 1e6


ids = [f"{n}x{size}" for n, size in SHAPES]


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_stream(benchmark, set_threads, shape):
    total = shape[0] * shape[1]
    x = [np.full(total, 0.5, np.float32) for _ in range(4)]
    run(benchmark, set_threads, shape, "stream", lambda: _core.stream_pass(3, x), roof=True)


def torch_adam(torch, prob, **kw):
    params = [torch.nn.Parameter(torch.from_numpy(x.copy())) for x in prob.init]
    for p, g in zip(params, prob.grads[0]):
        p.grad = torch.from_numpy(g)
    return params, torch.optim.Adam(params, lr=LR, **kw)


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_trainkern(benchmark, set_threads, shape):
    """adam_step_multi on the tensors torch's fused Adam allocated and steps."""
    prob = problem(shape)
    torch = pytest.importorskip("torch")
    params, opt = torch_adam(torch, prob, fused=True)
    opt.step()  # torch allocates its state; one step taken
    st = [opt.state[p] for p in params]
    p_views = [p.detach().numpy() for p in params]
    g_views = [p.grad.numpy() for p in params]
    m_views = [s["exp_avg"].numpy() for s in st]
    v_views = [s["exp_avg_sq"].numpy() for s in st]
    counters = [s["step"].numpy() for s in st]
    calls = [1]

    def step():
        calls[0] += 1
        trainkern.adam_step_multi(p_views, g_views, m_views, v_views, step_counters=counters,
                                  lr=LR)

    run(benchmark, set_threads, shape, "trainkern", step)
    assert all(int(c) == calls[0] for c in counters)
    prob.check(lambda i: p_views[i], [0] * calls[0], "adam_torch_100")


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_trainkern_optim(benchmark, set_threads, shape):
    prob = problem(shape)
    params = [x.copy() for x in prob.init]
    opt = optim.Adam(params, lr=LR)
    calls = [0]

    def step():
        calls[0] += 1
        opt.step(prob.grads[0])

    run(benchmark, set_threads, shape, "trainkern-optim", step)
    prob.check(lambda i: params[i], [0] * calls[0], "adam")


def trainkern_torch(benchmark, set_threads, shape, grads):
    torch = pytest.importorskip("torch")
    import trainkern.torch as tkt

    prob = problem(shape)
    params = [torch.nn.Parameter(torch.from_numpy(x.copy())) for x in prob.init]
    sets = [[torch.from_numpy(g) for g in gs] for gs in prob.grads]
    opt = tkt.Adam(params, lr=LR)
    used = []

    def step():
        s = len(used) % 2 if grads == "fresh" else 0
        if grads == "fresh" or not used:
            for p, g in zip(params, sets[s]):
                p.grad = g
        used.append(s)
        opt.step()

    run(benchmark, set_threads, shape, f"trainkern-torch-{grads}-grads", step)
    prob.check(lambda i: params[i].detach().numpy(), used, "adam")


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_trainkern_torch_kept_grads(benchmark, set_threads, shape):
    trainkern_torch(benchmark, set_threads, shape, "kept")


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_trainkern_torch_fresh_grads(benchmark, set_threads, shape):
    """New gradient tensors every step, as after the default zero_grad(set_to_none=True)."""
    trainkern_torch(benchmark, set_threads, shape, "fresh")


def torch_optim(benchmark, set_threads, shape, mode, fresh=False):
    torch = pytest.importorskip("torch")
    prob = problem(shape)
    params, opt = torch_adam(torch, prob, **{mode: True} if mode != "forloop" else
                             {"foreach": False})
    sets = [[torch.from_numpy(g) for g in gs] for gs in prob.grads]
    used = []

    def step():
        s = len(used) % 2 if fresh else 0
        if fresh:
            for p, g in zip(params, sets[s]):
                p.grad = g
        used.append(s)
        opt.step()

    rounds = 5 if mode in ("foreach", "forloop") else 40
    impl = f"torch-{mode}" + ("-fresh-grads" if fresh else "")
    run(benchmark, set_threads, shape, impl, step, rounds=rounds)
    prob.check(lambda i: params[i].detach().numpy(), used, "adam_torch_100")


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_torch_fused(benchmark, set_threads, shape):
    torch_optim(benchmark, set_threads, shape, "fused")


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_torch_fused_fresh_grads(benchmark, set_threads, shape):
    torch_optim(benchmark, set_threads, shape, "fused", fresh=True)


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_torch_foreach(benchmark, set_threads, shape):
    torch_optim(benchmark, set_threads, shape, "foreach")


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_torch_forloop(benchmark, set_threads, shape):
    torch_optim(benchmark, set_threads, shape, "forloop")


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_numpy_reference(benchmark, set_threads, shape):
    prob = problem(shape)
    params = [x.copy() for x in prob.init]
    m = [np.zeros_like(x) for x in params]
    v = [np.zeros_like(x) for x in params]
    calls = [0]

    def step():
        calls[0] += 1
        ref.adam_step_multi(params, prob.grads[0], m, v, steps=calls[0], lr=LR)

    run(benchmark, set_threads, shape, "numpy", step, rounds=5)
    prob.check(lambda i: params[i], [0] * calls[0], "adam")
