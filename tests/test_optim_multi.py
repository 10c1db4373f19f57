"""Multi-tensor steps (adam_step_multi, sgd_step_multi) against the NumPy reference.

Sizes straddle every vector width (below, at and above one vector; a tensor below one
vector is a lone masked tail), include empty tensors, and the batches are large enough in
places to run the parallel region, where threads split tensors between them.
"""

import numpy as np
import pytest
import trainkern
from tolerances import assert_close
from trainkern import _core
from trainkern import reference as ref
from producers import DLPackOnly

# Below, at and above 4, 8 and 16 lanes; empty; a few cache lines; not a multiple of 64.
SIZES = [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 1000, 1023]


def make_batch(rng, dtype, sizes, n_state=2):
    params = [rng.standard_normal(s).astype(dtype) for s in sizes]
    # Non-zero gradients everywhere (a skipped vector path must show).
    grads = [(rng.standard_normal(s) + np.where(rng.random(s) < 0.5, 1.0, -1.0)).astype(dtype)
             for s in sizes]
    state = [[np.abs(rng.standard_normal(s)).astype(dtype) * 0.1 for s in sizes]
             for _ in range(n_state)]
    return params, grads, state


def copies(arrays):
    return [a.copy() for a in arrays]


ADAM_CASES = [
    {},
    {"weight_decay": 0.1},
    {"weight_decay": 0.1, "decoupled_weight_decay": True},
    {"amsgrad": True, "maximize": True},
    {"grad_scale": 1024.0, "lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
]


@pytest.mark.parametrize("kw", ADAM_CASES, ids=lambda kw: ",".join(kw) or "default")
def test_adam_multi_matches_reference(isa, dtype, rng, kw):
    p, g, (m, v) = make_batch(rng, dtype, SIZES)
    vmax = [np.abs(rng.standard_normal(s)).astype(dtype) * 0.1 for s in SIZES]
    # Per-tensor step counts, as torch keeps them: they need not agree.
    steps = [1 + (3 * i) % 7 for i in range(len(SIZES))]
    want = [copies(p), copies(m), copies(v), copies(vmax)]
    extra = {"max_exp_avg_sqs": vmax} if kw.get("amsgrad") else {}
    trainkern.adam_step_multi(p, g, m, v, steps=steps, **kw, **extra)
    extra = {"max_exp_avg_sqs": want[3]} if kw.get("amsgrad") else {}
    ref.adam_step_multi(want[0], g, want[1], want[2], steps=steps, **kw, **extra)
    for got, exp in zip([p, m, v, vmax], want):
        for i, (a, b) in enumerate(zip(got, exp)):
            assert_close(a, b, "adam", dtype, err_msg=f"tensor {i} (size {SIZES[i]})")


def test_adam_multi_equals_single_tensor_steps(isa, dtype, rng):
    """One call over the batch gives bit for bit what one adam_step per tensor gives."""
    p, g, (m, v) = make_batch(rng, dtype, SIZES)
    p1, m1, v1 = copies(p), copies(m), copies(v)
    trainkern.adam_step_multi(p, g, m, v, steps=3, lr=0.01, weight_decay=0.01)
    for i in range(len(SIZES)):
        trainkern.adam_step(p1[i], g[i], m1[i], v1[i], step=3, lr=0.01, weight_decay=0.01)
    for a, b in zip(p + m + v, p1 + m1 + v1):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kw",
    [
        {"momentum": 0.0},
        {"momentum": 0.9},
        {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        {"momentum": 0.5, "dampening": 0.3, "maximize": True},
    ],
    ids=["plain", "momentum", "nesterov", "dampening"],
)
def test_sgd_multi_matches_reference(isa, dtype, rng, kw):
    p, g, (buf,) = make_batch(rng, dtype, SIZES, n_state=1)
    # Mixed first steps: fresh buffers take the gradient itself (torch's rule).
    steps = [1 if i % 3 == 0 else 5 for i in range(len(SIZES))]
    want_p, want_b = copies(p), copies(buf)
    bufs = buf if kw["momentum"] else None
    trainkern.sgd_step_multi(p, g, bufs, lr=0.1, steps=steps, **kw)
    ref.sgd_step_multi(want_p, g, want_b if kw["momentum"] else None, lr=0.1, steps=steps, **kw)
    for a, b in zip(p, want_p):
        assert_close(a, b, "sgd", dtype)
    if kw["momentum"]:
        for a, b in zip(buf, want_b):
            assert_close(a, b, "sgd", dtype)


@pytest.mark.parametrize("form", ["float32", "float64", "int64"])
def test_step_counters_are_bumped_and_used(rng, form):
    sizes = [5, 40, 3]
    p, g, (m, v) = make_batch(rng, np.float32, sizes)
    counters = [np.array(c, dtype=form) for c in (0, 4, 9)]
    want = [copies(p), copies(m), copies(v)]
    trainkern.adam_step_multi(p, g, m, v, step_counters=counters, lr=0.01)
    assert [int(c) for c in counters] == [1, 5, 10]
    assert all(c.dtype == np.dtype(form) for c in counters)
    ref.adam_step_multi(*want[:1], g, *want[1:], steps=[1, 5, 10], lr=0.01)
    for a, b in zip(p + m + v, want[0] + want[1] + want[2]):
        assert_close(a, b, "adam", np.float32)


def test_results_do_not_depend_on_thread_count(threads, rng):
    """Above the serial threshold the batch is split by elements: threads cut tensors."""
    sizes = [int(s) for s in rng.integers(1, 5000, size=120)] + [70001]
    base = make_batch(rng, np.float32, sizes)
    results = []
    for n in (1, 2, 3):
        trainkern.set_num_threads(n)
        p, m, v = copies(base[0]), copies(base[2][0]), copies(base[2][1])
        trainkern.adam_step_multi(p, base[1], m, v, steps=2, lr=0.01)
        buf = copies(base[2][0])
        trainkern.sgd_step_multi(p, base[1], buf, lr=0.1, momentum=0.9)
        results.append(p + m + v + buf)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    want_p, want_m, want_v = copies(base[0]), copies(base[2][0]), copies(base[2][1])
    ref.adam_step_multi(want_p, base[1], want_m, want_v, steps=2, lr=0.01)
    for a, b in zip(results[0][len(sizes) : 3 * len(sizes)], want_m + want_v):
        assert_close(a, b, "adam", np.float32)
    want_buf = copies(base[2][0])
    ref.sgd_step_multi(want_p, base[1], want_buf, lr=0.1, momentum=0.9)
    for a, b in zip(results[0][: len(sizes)] + results[0][3 * len(sizes) :], want_p + want_buf):
        assert_close(a, b, "sgd", np.float32)


def test_empty_batch_is_a_no_op():
    trainkern.adam_step_multi([], [], [], [], steps=1)
    trainkern.sgd_step_multi([], [], None, lr=0.1)


def test_tuples_and_multidimensional_tensors(rng):
    shapes = [(3, 4), (2, 3, 5), (), (7, 1)]
    p = tuple(rng.standard_normal(s).astype(np.float64) for s in shapes)
    g = tuple(rng.standard_normal(s).astype(np.float64) for s in shapes)
    m = tuple(np.zeros(s) for s in shapes)
    v = tuple(np.zeros(s) for s in shapes)
    want = [copies(p), copies(m), copies(v)]
    trainkern.adam_step_multi(p, g, m, v, steps=1, lr=0.1)
    ref.adam_step_multi(want[0], g, want[1], want[2], steps=1, lr=0.1)
    for a, b in zip(p + m + v, want[0] + want[1] + want[2]):
        assert_close(a, b, "adam", np.float64)


def test_the_same_gradient_may_serve_several_tensors(rng):
    g = rng.standard_normal(10).astype(np.float32)
    p = [rng.standard_normal(10).astype(np.float32) for _ in range(2)]
    m = [np.zeros(10, np.float32) for _ in range(2)]
    v = [np.zeros(10, np.float32) for _ in range(2)]
    want = copies(p)
    trainkern.adam_step_multi(p, [g, g], m, v, steps=1)
    for i in range(2):
        ref.adam_step(want[i], g, np.zeros(10, np.float32), np.zeros(10, np.float32), step=1)
        assert_close(p[i], want[i], "adam", np.float32)


# -- validation: errors name the entry, and nothing is written ---------------------------------


def adam_args(rng, n=4, size=8, dtype=np.float32):
    p, g, (m, v) = make_batch(rng, dtype, [size] * n)
    return p, g, m, v


def assert_untouched(before, after):
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "mutate, exc, match",
    [
        (lambda a: a["g"].__setitem__(2, a["g"][2][:5].copy()), ValueError,
         r"grads\[2\] has shape \(5,\) but params\[2\] has shape \(8,\)"),
        (lambda a: a["m"].__setitem__(1, a["m"][1].astype(np.float64)), TypeError,
         r"exp_avgs\[1\] has dtype float64 but params\[0\] has dtype float32"),
        (lambda a: a["p"].__setitem__(3, a["p"][3].astype(np.float64)), TypeError,
         r"params\[3\] has dtype float64 but params\[0\] has dtype float32"),
        (lambda a: a["v"].__setitem__(0, np.zeros(16, np.float32)[::2]), ValueError,
         r"exp_avg_sqs\[0\] must be C-contiguous"),
        (lambda a: a["p"][1].setflags(write=False), ValueError, r"params\[1\] is read-only"),
        (lambda a: a["m"].__setitem__(2, a["p"][0]), ValueError,
         r"params\[0\] and exp_avgs\[2\] overlap in memory"),
        (lambda a: a["g"].__setitem__(1, a["v"][3][:]), ValueError,
         r"exp_avg_sqs\[3\] and grads\[1\] overlap|grads\[1\] and exp_avg_sqs\[3\] overlap"),
        (lambda a: a["g"].pop(), ValueError, r"grads has 3 entries but params has 4"),
        (lambda a: a["g"].__setitem__(0, None), TypeError, r"grads\[0\] must be an array"),
        (lambda a: a["p"].__setitem__(0, a["p"][0].astype(np.int32)), TypeError,
         r"params\[0\] must be float32 or float64"),
    ],
    ids=["shape", "dtype-state", "dtype-mixed", "strided", "read-only", "overlap-written",
         "overlap-grad", "length", "none", "int"],
)
def test_adam_multi_rejects_bad_entries(rng, mutate, exc, match):
    p, g, m, v = adam_args(rng)
    a = {"p": p, "g": g, "m": m, "v": v}
    mutate(a)
    before = [x.copy() for x in a["p"] + a["m"] + a["v"]]
    with pytest.raises(exc, match=match):
        trainkern.adam_step_multi(a["p"], a["g"], a["m"], a["v"], steps=1)
    assert_untouched(before, a["p"] + a["m"] + a["v"])


def test_step_arguments_are_checked(rng):
    p, g, m, v = adam_args(rng)
    counters = [np.zeros((), np.float32) for _ in p]
    with pytest.raises(TypeError, match="exactly one of steps and step_counters"):
        trainkern.adam_step_multi(p, g, m, v)
    with pytest.raises(TypeError, match="exactly one of steps and step_counters"):
        trainkern.adam_step_multi(p, g, m, v, steps=1, step_counters=counters)
    with pytest.raises(ValueError, match="steps has 3 entries but there are 4 tensors"):
        trainkern.adam_step_multi(p, g, m, v, steps=[1, 2, 3])
    with pytest.raises(ValueError, match=r"steps\[1\] must be >= 1, got 0"):
        trainkern.adam_step_multi(p, g, m, v, steps=[1, 0, 1, 1])
    with pytest.raises(TypeError, match=r"steps\[2\] must be an integer"):
        trainkern.adam_step_multi(p, g, m, v, steps=[1, 1, 1.5, 1])
    bad = counters[:3] + [np.zeros(1, np.float32)]
    with pytest.raises(ValueError, match=r"step_counters\[3\] must be a 0-d array"):
        trainkern.adam_step_multi(p, g, m, v, step_counters=bad)
    bad = counters[:3] + [np.array(2.5, np.float32)]
    with pytest.raises(ValueError, match=r"step_counters\[3\] must hold a whole number"):
        trainkern.adam_step_multi(p, g, m, v, step_counters=bad)
    bad = counters[:3] + [np.array(1, np.int8)]
    with pytest.raises(TypeError, match=r"step_counters\[3\] must be float32, float64 or int64"):
        trainkern.adam_step_multi(p, g, m, v, step_counters=bad)
    shared = np.zeros(4, np.int64)
    bad = [shared[0:1].reshape(()), shared[1:2].reshape(()), shared[0:1].reshape(()),
           shared[3:4].reshape(())]
    with pytest.raises(ValueError, match=r"step_counters\[0\] and step_counters\[2\] overlap"):
        trainkern.adam_step_multi(p, g, m, v, step_counters=bad)
    # A failing call bumps no counter.
    assert all(int(c) == 0 for c in counters) and not shared.any()
    with pytest.raises(TypeError, match="params must be a list or tuple of arrays"):
        trainkern.adam_step_multi(p[0], g, m, v, steps=1)


def test_amsgrad_buffers_are_required_and_only_with_amsgrad(rng):
    p, g, m, v = adam_args(rng)
    with pytest.raises(ValueError, match="amsgrad=True needs max_exp_avg_sqs"):
        trainkern.adam_step_multi(p, g, m, v, steps=1, amsgrad=True)
    with pytest.raises(ValueError, match="max_exp_avg_sqs is only used with amsgrad=True"):
        trainkern.adam_step_multi(p, g, m, v, steps=1, max_exp_avg_sqs=copies(v))
    with pytest.raises(ValueError, match="max_exp_avg_sqs has 3 entries but params has 4"):
        trainkern.adam_step_multi(p, g, m, v, steps=1, amsgrad=True, max_exp_avg_sqs=v[:3])


def test_hyper_parameters_are_checked(rng):
    p, g, m, v = adam_args(rng)
    with pytest.raises(ValueError, match=r"adam_step_multi: lr must be in \[0"):
        trainkern.adam_step_multi(p, g, m, v, steps=1, lr=-1.0)
    with pytest.raises(ValueError, match=r"beta2 must be in"):
        trainkern.adam_step_multi(p, g, m, v, steps=1, beta2=1.0)
    with pytest.raises(ValueError, match="nesterov=True requires momentum > 0"):
        trainkern.sgd_step_multi(p, g, None, lr=0.1, nesterov=True)


def test_sgd_multi_rejects_bad_entries(rng):
    p, g, m, _ = adam_args(rng)
    with pytest.raises(ValueError, match="momentum != 0 needs momentum_buffers"):
        trainkern.sgd_step_multi(p, g, None, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="momentum_buffers has 3 entries but params has 4"):
        trainkern.sgd_step_multi(p, g, m[:3], lr=0.1, momentum=0.9)
    m[2] = p[1]
    before = copies(p)
    with pytest.raises(ValueError, match=r"params\[1\] and momentum_buffers\[2\] overlap"):
        trainkern.sgd_step_multi(p, g, m, lr=0.1, momentum=0.9)
    assert_untouched(before, p)


def test_entries_may_be_torch_tensors_and_dlpack_producers(rng):
    torch = pytest.importorskip("torch")

    p, g, m, v = adam_args(rng, n=3)
    want = [copies(p), copies(m), copies(v)]
    tp = [torch.from_numpy(x) for x in p]  # shares memory with p
    tm = [DLPackOnly(x) for x in m]
    trainkern.adam_step_multi(tp, g, tm, v, steps=1, lr=0.1)
    ref.adam_step_multi(want[0], g, want[1], want[2], steps=1, lr=0.1)
    for a, b in zip(p + m + v, want[0] + want[1] + want[2]):
        assert_close(a, b, "adam", np.float32)
    with pytest.raises(TypeError, match=r"params\[1\] is a torch tensor on meta"):
        trainkern.adam_step_multi([tp[0], torch.empty(8, device="meta"), tp[2]], g, m, v,
                                  steps=1)


def test_core_entry_point_is_registered():
    assert callable(_core.adam_step_multi) and callable(_core.sgd_step_multi)
