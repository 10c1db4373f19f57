"""adam_step and sgd_step against the NumPy reference (and torch.optim when importable)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import assert_close

import trainkern
from trainkern import _core
from trainkern import reference as ref

SIZES = [0, 1, 15, 16, 17, 63, 65, 1000003]
ADAM_FLAGS = list(itertools.product([0.0, 0.1], [False, True], [False, True], [False, True],
                                    [None, 64.0]))


def _state(rng, n, dtype, offset=0):
    """param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq; `offset` makes unaligned views."""
    def arr(scale, positive=False):
        a = np.empty(n + offset, dtype=dtype)[offset:]
        x = rng.standard_normal(n) * scale
        a[...] = np.abs(x) if positive else x
        # Non-zero gradients everywhere (a zero would hide a skipped lane).
        return a
    g = arr(1.0)
    g[g == 0] = 0.5
    return [arr(1.0), g, arr(0.1), arr(0.01, True), arr(0.02, True)]


def _run_adam(fn, arrays, steps, **kw):
    p, g, m, v, vmax = arrays
    for t in range(1, steps + 1):
        fn(p, g, m, v, step=t, max_exp_avg_sq=vmax if kw.get("amsgrad") else None, **kw)


@pytest.mark.parametrize("n", SIZES)
def test_adam_matches_reference_all_sizes(isa, dtype, rng, n):
    a = _state(rng, n, dtype)
    b = [x.copy() for x in a]
    kw = dict(lr=1e-2, weight_decay=0.05)
    _run_adam(trainkern.adam_step, a, 3, **kw)
    _run_adam(ref.adam_step, b, 3, **kw)
    for x, y, name in zip(a, b, ["param", "grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]):
        assert_close(x, y, "adam", dtype, err_msg=name)


@pytest.mark.parametrize("wd,decoupled,amsgrad,maximize,grad_scale", ADAM_FLAGS)
@pytest.mark.parametrize("n,offset", [(37, 1), (1000, 0)])
def test_adam_flags(isa, dtype, rng, n, offset, wd, decoupled, amsgrad, maximize, grad_scale):
    a = _state(rng, n, dtype, offset)
    b = [x.copy() for x in a]
    g_before = a[1].copy()
    kw = dict(lr=3e-3, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=wd,
              decoupled_weight_decay=decoupled, amsgrad=amsgrad, maximize=maximize,
              grad_scale=grad_scale)
    _run_adam(trainkern.adam_step, a, 4, **kw)
    _run_adam(ref.adam_step, b, 4, **kw)
    for x, y in zip(a, b):
        assert_close(x, y, "adam", dtype)
    np.testing.assert_array_equal(a[1], g_before)  # grad is read-only, grad_scale included
    assert not np.array_equal(a[0], _state(np.random.default_rng(20261128), n, dtype)[0])


def test_adam_same_result_for_any_thread_count(isa, rng, threads):
    a1 = _state(rng, 300_001, np.float32)
    a2 = [x.copy() for x in a1]
    trainkern.set_num_threads(1)
    _run_adam(trainkern.adam_step, a1, 2, lr=1e-2)
    trainkern.set_num_threads(2)
    _run_adam(trainkern.adam_step, a2, 2, lr=1e-2)
    for x, y in zip(a1, a2):
        np.testing.assert_array_equal(x, y)


def test_adam_targets_agree_with_scalar(rng):
    """Every vector target computes exactly what the scalar target does (no FMA contraction)."""
    base = _state(rng, 4099, np.float32)
    results = {}
    previous = trainkern.isa()
    try:
        for name in trainkern.available_isas():
            _core.set_isa(name)
            a = [x.copy() for x in base]
            _run_adam(trainkern.adam_step, a, 3, lr=1e-2, weight_decay=0.01, amsgrad=True)
            results[name] = a
    finally:
        _core.set_isa(previous)
    for name, a in results.items():
        for x, y in zip(a, results["scalar"]):
            np.testing.assert_array_equal(x, y, err_msg=name)


def test_adam_special_values(isa, dtype):
    p = np.array([1.0, np.inf, np.nan, 1.0, -1.0], dtype=dtype)
    g = np.array([np.nan, 1.0, 1.0, np.inf, 0.0], dtype=dtype)
    m = np.zeros(5, dtype)
    v = np.zeros(5, dtype)
    b = [x.copy() for x in (p, g, m, v)]
    with np.errstate(all="ignore"):
        trainkern.adam_step(p, g, m, v, step=1)
        ref.adam_step(*b, step=1)
    for x, y in zip((p, g, m, v), b):
        np.testing.assert_array_equal(x, y)  # NaN in the same places, same finite values


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 300),
    offset=st.integers(0, 3),
    step=st.integers(1, 10_000),
    lr=st.floats(0, 1),
    beta1=st.floats(0, 0.999),
    beta2=st.floats(0, 0.9999),
    eps=st.floats(1e-12, 1e-2),
    wd=st.floats(0, 1),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    use_f64=st.booleans(),
)
def test_adam_hypothesis(n, offset, step, lr, beta1, beta2, eps, wd, flags, use_f64):
    dtype = np.float64 if use_f64 else np.float32
    a = _state(np.random.default_rng(n), n, dtype, offset)
    b = [x.copy() for x in a]
    decoupled, amsgrad, maximize = flags
    kw = dict(step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=wd,
              decoupled_weight_decay=decoupled, amsgrad=amsgrad, maximize=maximize)
    trainkern.adam_step(*a[:4], max_exp_avg_sq=a[4] if amsgrad else None, **kw)
    ref.adam_step(*b[:4], max_exp_avg_sq=b[4] if amsgrad else None, **kw)
    for x, y in zip(a, b):
        assert_close(x, y, "adam", dtype)


SGD_FLAGS = [
    # momentum, dampening, nesterov, weight_decay, maximize
    (0.0, 0.0, False, 0.0, False),
    (0.0, 0.0, False, 0.1, True),
    (0.9, 0.0, False, 0.0, False),
    (0.9, 0.3, False, 0.01, False),
    (0.9, 0.0, True, 0.01, False),
    (0.5, 0.1, False, 0.0, True),
    (0.9, 0.0, True, 0.0, True),
]


# Every flag set at the small sizes; the large size (several vector chunks per thread)
# once per momentum mode.
SGD_CASES = [(n, *f) for n in (0, 1, 15, 16, 17) for f in SGD_FLAGS] + [
    (1000003, *f) for f in SGD_FLAGS if f[3] == 0.01
]


@pytest.mark.parametrize("n,momentum,dampening,nesterov,wd,maximize", SGD_CASES)
def test_sgd_matches_reference(isa, dtype, rng, n, momentum, dampening, nesterov, wd, maximize):
    p, g = _state(rng, n, dtype, 1)[:2]
    buf = np.zeros(n, dtype) if momentum else None
    a = [p, g, buf]
    b = [None if x is None else x.copy() for x in a]
    kw = dict(lr=0.05, momentum=momentum, dampening=dampening, nesterov=nesterov,
              weight_decay=wd, maximize=maximize)
    for t in (1, 2, 3):
        trainkern.sgd_step(*a, step=t, **kw)
        ref.sgd_step(*b, step=t, **kw)
    for x, y in zip(a, b):
        if x is not None:
            assert_close(x, y, "sgd", dtype)


def test_sgd_first_step_sets_buffer_to_gradient(isa, rng):
    p, g = _state(rng, 33, np.float32)[:2]
    buf = np.full(33, 123.0, np.float32)
    trainkern.sgd_step(p, g, buf, lr=0.1, momentum=0.9, dampening=0.5, step=1)
    np.testing.assert_array_equal(buf, g)


# ---- against torch.optim -------------------------------------------------------------------

def _torch_run(torch, opt_cls, p0, grads, **kw):
    p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = opt_cls([p], foreach=False, **kw)
    for g in grads:
        p.grad = torch.from_numpy(g)
        opt.step()
    return p.detach().numpy()


@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=1e-3),
        dict(lr=1e-2, weight_decay=0.1),
        dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True),
        dict(lr=1e-2, amsgrad=True),
        dict(lr=1e-2, maximize=True, betas=(0.8, 0.95), eps=1e-6),
    ],
    ids=["adam", "l2", "adamw", "amsgrad", "maximize"],
)
def test_adam_100_steps_match_torch(isa, dtype, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    n = 4099
    p0 = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(100)]
    kw = dict(kw)
    decoupled = kw.pop("decoupled_weight_decay", False)
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    if decoupled:
        kw.setdefault("weight_decay", 0.0)
    expected = _torch_run(torch, cls, p0, grads, **kw)

    beta1, beta2 = kw.pop("betas", (0.9, 0.999))
    p = p0.copy()
    m, v, vmax = (np.zeros(n, dtype) for _ in range(3))
    for t, g in enumerate(grads, 1):
        trainkern.adam_step(p, g, m, v, step=t, beta1=beta1, beta2=beta2,
                            decoupled_weight_decay=decoupled,
                            max_exp_avg_sq=vmax if kw.get("amsgrad") else None, **kw)
    assert_close(p, expected, "adam_torch_100", dtype)


def test_adam_eps_zero_as_torch(isa, dtype):
    """eps = 0 is accepted, as torch accepts it: where the gradient has always been zero the
    update is 0/0 = NaN in both, and elsewhere the values agree."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    n = 1031
    p0 = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(5)]
    for g in grads:
        g[::7] = 0
    expected = _torch_run(torch, torch.optim.Adam, p0, grads, lr=1e-2, eps=0.0)
    assert np.isnan(expected[::7]).all()
    p = p0.copy()
    m, v = np.zeros(n, dtype), np.zeros(n, dtype)
    for t, g in enumerate(grads, 1):
        trainkern.adam_step(p, g, m, v, step=t, lr=1e-2, eps=0.0)
    assert np.isnan(p[::7]).all()
    keep = np.ones(n, bool)
    keep[::7] = False
    assert_close(p[keep], expected[keep], "adam_torch_100", dtype)


@pytest.mark.parametrize(
    "kw",
    [dict(lr=0.01), dict(lr=0.01, momentum=0.9), dict(lr=0.01, momentum=0.9, dampening=0.2,
     weight_decay=1e-3), dict(lr=0.01, momentum=0.9, nesterov=True, maximize=True)],
    ids=["gd", "momentum", "dampening", "nesterov"],
)
def test_sgd_100_steps_match_torch(isa, dtype, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    n = 1031
    p0 = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(100)]
    expected = _torch_run(torch, torch.optim.SGD, p0, grads, **kw)
    p = p0.copy()
    buf = np.zeros(n, dtype) if kw.get("momentum") else None
    for t, g in enumerate(grads, 1):
        trainkern.sgd_step(p, g, buf, step=t, **kw)
    assert_close(p, expected, "sgd_torch_100", dtype)
