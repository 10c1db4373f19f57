"""Fuzzing the public API: hypothesis draws dtypes, shapes (0-d, empty, past the threads'
cut-off), layouts (C, F, strided, padded rows, negative and zero strides, misaligned),
read-only flags, aliasing between arguments, zero-copy wrappers (torch, DLPack, memoryview),
values with NaN/inf/subnormals, and hyper-parameters in and out of range, for every public
function (the ISA target and the thread count are drawn too).

Each call either matches the function's twin in trainkern.reference (tolerances from
tests/tolerances.py) or raises TypeError/ValueError; a call that raises leaves every byte of
every argument as it was; a call that succeeds writes no byte outside its arguments; and a
call that is valid by construction must succeed. Example counts are bounded (FUZZ_EXAMPLES)
so that the file stays within ~30 s.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util
import math
import os

import numpy as np
import pytest
import trainkern
from fuzz_cases import (
    BAD_DTYPES,
    FLOATS,
    LAYOUTS,
    SPECIALS,
    Arena,
    Role,
    View,
    all_views,
    build,
    layout_ok,
    other_shape,
    overlap_ok,
    shapes,
    values,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tolerances import tolerance
from trainkern import _core
from trainkern import reference as ref

HAVE_TORCH = importlib.util.find_spec("torch") is not None
ISAS = trainkern.available_isas()
# The default run replays the same examples every time (derandomized); a deeper, random run:
# TRAINKERN_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py
FUZZ_EXAMPLES = int(os.environ.get("TRAINKERN_FUZZ_EXAMPLES", "0")) or None
fuzz = settings(max_examples=FUZZ_EXAMPLES or 100, derandomize=FUZZ_EXAMPLES is None,
                deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

JUNK = [None, "x", 3.0, [1.0, 2.0], object()]
MUTATIONS = ["none"] * 5 + ["dtype", "shape", "layout", "readonly", "alias", "hyper", "junk"]
INT_LABELS = [np.dtype(t) for t in (np.int64, np.int32, np.int16, np.int8, np.uint8, ">i8")]
COUNTERS = [np.dtype(t) for t in (np.float32, np.float64, np.int64)]
# Linear-layer operands: specials without huge finite values, whose partial sums would
# overflow in one summation order and not in another.
GEMM_SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, 5e-324, 1.0, -1.0])


@dataclasses.dataclass
class Case:
    fn: str
    args: tuple
    kwargs: dict
    bufs: list
    valid: bool
    check: str  # how results are compared (see compare())
    isa: str
    threads: int

    def __repr__(self):
        def show(o):
            if isinstance(o, View):
                ro = ",ro" if o.readonly else ""
                return (f"View(buf{o.buf}+{o.offset},{o.shape},{o.strides},{o.dtype.str}{ro},"
                        f"{o.wrap})")
            if isinstance(o, (list, tuple)):
                return type(o)(show(x) for x in o)
            return o

        kw = {k: show(v) for k, v in self.kwargs.items()}
        return (f"Case({self.fn}, args={show(self.args)}, kwargs={kw}, valid={self.valid}, "
                f"isa={self.isa}, threads={self.threads})")

    def _repr_pretty_(self, p, cycle):  # what hypothesis prints for a failing example
        p.text(repr(self))


class Gen:
    """Draws one case: arrays on an Arena, at most one mutation, hyper-parameters."""

    def __init__(self, draw, n_arrays, specials=SPECIALS):
        self.draw = draw
        self.arena = Arena()
        self.roles: list[Role] = []
        self.valid = True
        self.mutation = draw(st.sampled_from(MUTATIONS))
        self.target = draw(st.integers(0, max(0, n_arrays - 1)))
        self.count = 0
        self.profile = draw(st.sampled_from(["normal", "special"]))
        self.specials = specials

    def array(self, shape, dtype, *, written=False, contiguous=False, aligned=False,
              rows=False, any_layout=False, same_view_ok=(), nonneg=False, vals=None,
              dtypes=FLOATS):
        d = self.draw
        hit = self.count == self.target
        self.count += 1
        layout, readonly, alias, shift = "C", False, None, 0
        if any_layout:
            layout = d(st.sampled_from(LAYOUTS))
        if hit and self.mutation == "junk":
            self.valid = False
            return d(st.sampled_from(JUNK))
        if hit and self.mutation == "dtype":
            new = d(st.sampled_from(BAD_DTYPES + FLOATS))
            if new != np.dtype(dtype):
                self.valid, dtype, vals = False, new, None
        if hit and self.mutation == "shape":
            self.valid, shape, vals = False, other_shape(d, tuple(shape)), None
        if hit and self.mutation == "layout":
            layout = d(st.sampled_from(LAYOUTS))
        if hit and self.mutation == "readonly":
            readonly = True
        if hit and self.mutation == "alias":
            pool = [v for v in self.arena.views
                    if v.shape == tuple(shape) and v.dtype == np.dtype(dtype)]
            if pool:
                alias = d(st.sampled_from(pool))
                shift = d(st.sampled_from([0, 0, 1, 3]))
        if vals is None:
            vals = values(d, tuple(shape), self.profile, nonneg=nonneg, specials=self.specials)
        v = self.arena.view(shape, dtype, vals, layout=layout, readonly=readonly, alias=alias,
                            shift=shift)
        v.wrap = self._wrap(v, layout)
        self.roles.append(Role(v, written, contiguous, aligned, rows, tuple(same_view_ok), dtypes))
        return v

    def same(self, v, **role):
        """`v` passed again as another argument (in-place use)."""
        if not isinstance(v, View):
            return v
        self.roles.append(Role(v, **role))
        return v

    def _wrap(self, v, layout):
        kinds = ["numpy", "numpy", "memoryview"]
        if not v.readonly and v.is_aligned() and v.dtype in FLOATS and layout != "broadcast":
            kinds.append("dlpack")
            if HAVE_TORCH and all(s >= 0 for s in v.strides):
                kinds.append("torch")
        return self.draw(st.sampled_from(kinds))

    def hyper(self, good, bad):
        """A hyper-parameter: drawn from `good`, or (when this case mutates hyper-parameters,
        for about a third of them) one of the `bad` values."""
        if self.mutation == "hyper" and self.draw(st.integers(0, 2)) == 0:
            self.valid = False
            return self.draw(st.sampled_from(bad))
        return self.draw(good)

    def case(self, fn, args, kwargs, check):
        valid = (self.valid and all(layout_ok(r) for r in self.roles)
                 and overlap_ok(self.roles))
        return Case(fn, args, kwargs, self.arena.realise(), valid, check,
                    self.draw(st.sampled_from(ISAS)), self.draw(st.sampled_from([1, 2])))


def floats(lo, hi, *extra):
    return st.one_of(st.sampled_from(list(extra) or [lo]), st.floats(lo, hi))


NAN, INF = math.nan, math.inf
BOOL = (st.sampled_from([True, False, np.True_, np.False_]), [1, 0, None, "yes"])
# 0, or large enough to stay nonzero in float32: a weight decay that rounds to 0 in float32 is
# skipped by the kernels, while torch (and the twin) still add 0 * param, which turns an
# infinite parameter into NaN.
WEIGHT_DECAY = st.one_of(st.just(0.0), st.floats(1e-6, 1.0))


# -- strategies, one per family ---------------------------------------------------------------


@st.composite
def adam_case(draw):
    g = Gen(draw, 5)
    dt = draw(st.sampled_from(FLOATS))
    shape = draw(shapes())
    amsgrad = g.hyper(*BOOL)
    c = dict(written=True, contiguous=True)
    p = g.array(shape, dt, **c)
    gr = g.array(shape, dt, contiguous=True)
    m = g.array(shape, dt, **c)
    v = g.array(shape, dt, nonneg=True, **c)
    kw = adam_hypers(g)
    kw["step"] = g.hyper(st.one_of(st.integers(1, 100), st.integers(1, 2**63 - 1)),
                         [0, -1, 1.5, True, 2**64, "1", None])
    kw["amsgrad"] = amsgrad
    if amsgrad is True or amsgrad is np.True_:
        kw["max_exp_avg_sq"] = g.array(shape, dt, nonneg=True, **c)
    return g.case("adam_step", (p, gr, m, v), kw, "adam")


def adam_hypers(g):
    return dict(
        lr=g.hyper(floats(0.0, 2.0, 1e-3, 1, np.float32(0.01)), [-1e-3, NAN, INF, None, "0.1"]),
        beta1=g.hyper(floats(0.0, 0.999, 0.9), [1.0, -0.1, NAN]),
        beta2=g.hyper(floats(0.0, 0.9999, 0.999), [1.0, 1.5, NAN]),
        eps=g.hyper(floats(1e-12, 1.0, 1e-8), [0.0, -1e-8, INF]),
        weight_decay=g.hyper(WEIGHT_DECAY, [-0.1, NAN]),
        decoupled_weight_decay=g.hyper(*BOOL),
        maximize=g.hyper(*BOOL),
        grad_scale=g.hyper(st.one_of(st.none(), st.floats(0.5, 1e4)), [0.0, -1.0, INF, "2"]),
    )


def sgd_hypers(g):
    kw = dict(
        lr=g.hyper(floats(0.0, 2.0, 0.1, 1), [-0.1, NAN, None, "0.1"]),
        momentum=g.hyper(floats(0.0, 1.0, 0.0, 0.9), [-0.5, NAN, INF]),
        dampening=g.hyper(floats(-1.0, 1.0, 0.0, 0.1), [NAN, INF]),
        nesterov=g.hyper(*BOOL),
        weight_decay=g.hyper(WEIGHT_DECAY, [-1.0, NAN]),
        maximize=g.hyper(*BOOL),
    )
    if kw["nesterov"] is True or kw["nesterov"] is np.True_:
        good = isinstance(kw["momentum"], float) and kw["momentum"] > 0 and kw["dampening"] == 0
        g.valid = g.valid and good
    return kw


def _needs_buffer(momentum):
    return not (isinstance(momentum, float) and momentum == 0.0)


@st.composite
def sgd_case(draw):
    g = Gen(draw, 3)
    dt = draw(st.sampled_from(FLOATS))
    shape = draw(shapes())
    kw = sgd_hypers(g)
    kw["step"] = g.hyper(st.one_of(st.none(), st.integers(1, 5)), [0, 1.5, "1"])
    p = g.array(shape, dt, written=True, contiguous=True)
    gr = g.array(shape, dt, contiguous=True)
    buf = None
    if _needs_buffer(kw["momentum"]):
        buf = g.array(shape, dt, written=True, contiguous=True)
    return g.case("sgd_step", (p, gr, buf), kw, "sgd")


def _multi_lists(g, dt, shapes_k, names):
    lists = {}
    for name in names:
        written = name != "grads"
        lists[name] = [g.array(s, dt, written=written, contiguous=True,
                               nonneg=name in ("exp_avg_sqs", "max_exp_avg_sqs"))
                       for s in shapes_k]
    return lists


@st.composite
def adam_multi_case(draw):
    k = draw(st.integers(0, 4))
    g = Gen(draw, 5 * k + k)
    dt = draw(st.sampled_from(FLOATS))
    shapes_k = [draw(shapes(max_dims=2)) for _ in range(k)]
    seq = draw(st.sampled_from([list, tuple]))
    kw = adam_hypers(g)
    amsgrad = g.hyper(*BOOL)
    names = ["params", "grads", "exp_avgs", "exp_avg_sqs"]
    if amsgrad is True or amsgrad is np.True_:
        names.append("max_exp_avg_sqs")
    lists = _multi_lists(g, dt, shapes_k, names)
    if draw(st.booleans()):
        kw["step_counters"] = [
            g.array((), ct, written=True, contiguous=True, dtypes=COUNTERS,
                    vals=np.array(draw(st.sampled_from([0, 1, 7, 2**24 - 1, 2**24, 10**9]))))
            for ct in [draw(st.sampled_from(COUNTERS)) for _ in range(k)]]
        if g.mutation == "hyper" and draw(st.booleans()):
            kw["steps"], g.valid = 1, False
    else:
        kw["steps"] = g.hyper(st.one_of(st.integers(1, 1000),
                                        st.lists(st.integers(1, 1000), min_size=k, max_size=k)),
                              [0, 1.5, [1] * (k + 1), None])
    kw["amsgrad"] = amsgrad
    args = tuple(seq(lists[n]) for n in names[:4])
    if "max_exp_avg_sqs" in lists:
        kw["max_exp_avg_sqs"] = seq(lists["max_exp_avg_sqs"])
    return g.case("adam_step_multi", args, kw, "adam")


@st.composite
def sgd_multi_case(draw):
    k = draw(st.integers(0, 4))
    g = Gen(draw, 3 * k)
    dt = draw(st.sampled_from(FLOATS))
    shapes_k = [draw(shapes(max_dims=2)) for _ in range(k)]
    seq = draw(st.sampled_from([list, tuple]))
    kw = sgd_hypers(g)
    kw["steps"] = g.hyper(st.one_of(st.none(), st.integers(1, 3),
                                    st.lists(st.integers(1, 3), min_size=k, max_size=k)),
                          [0, [1] * (k + 1), 1.5])
    names = ["params", "grads"] + (["momentum_buffers"] if _needs_buffer(kw["momentum"]) else [])
    lists = _multi_lists(g, dt, shapes_k, names)
    buf = seq(lists["momentum_buffers"]) if "momentum_buffers" in lists else None
    return g.case("sgd_step_multi", (seq(lists["params"]), seq(lists["grads"]), buf), kw, "sgd")


FORWARD = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "silu"]
SLOPE = (floats(-2.0, 2.0, 0.01, 0.0), [NAN, INF, "0.1", None])
APPROX = (st.sampled_from(["none", "tanh"]), ["erf", None, 1])
# Gradients: NaN, zeros, subnormals, O(1) (the act_grad tolerance is for O(1) gradients).
# Not infinite: inf times a derivative that is 0 to working precision is NaN in torch and the
# twin, +-inf here. Not huge: SiLU's and the GELUs' backward bring grad_y in before the final
# scaling (for subnormal speed), so |grad_y| above ~1e37 overflows where the result would not.
GRAD_SPECIALS = np.array([np.nan, 0.0, -0.0, 1e-40, -1e-40, 5e-324, 1.0, -1.0])
# Magnitudes up to 1e38, so that the difference of two stays finite in float32: logits
# (x - max(x)) and MSE (pred - target) overflow past FLT_MAX in float32, giving inf or NaN
# where the float64 twin is finite (torch's float32 does the same).
BOUNDED_SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, 5e-324, 1e38, -1e38,
                           1.0, -1.0, 30.0, -30.0])
# y outside these ranges cannot come from the forward pass: y (1 - y) may overflow there.
OUTPUT_RANGE = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}


def _out(g, like, inputs, shape, dt, vals=None):
    """out=: absent, a fresh array, or one of the inputs itself (in place)."""
    choice = g.draw(st.sampled_from(["none", "fresh"] + [f"in{i}" for i in range(len(inputs))]))
    if choice == "none":
        return None
    if choice == "fresh":
        return g.array(shape, dt, written=True, contiguous=True, same_view_ok=inputs, vals=vals)
    return g.same(inputs[int(choice[2:])], written=True, contiguous=True, same_view_ok=inputs)


@st.composite
def forward_case(draw, name):
    g = Gen(draw, 2)
    dt = draw(st.sampled_from(FLOATS))
    shape = draw(shapes())
    x = g.array(shape, dt, any_layout=True)
    kw = {"out": _out(g, x, (x,), shape, dt)}
    if name == "leaky_relu":
        kw["negative_slope"] = g.hyper(*SLOPE)
    if name == "gelu":
        kw["approximate"] = g.hyper(*APPROX)
    return g.case(name, (x,), kw, "act")


@st.composite
def backward_case(draw, name):
    g = Gen(draw, 3)
    dt = draw(st.sampled_from(FLOATS))
    shape = draw(shapes())
    lo, hi = OUTPUT_RANGE.get(name, (-np.inf, np.inf))  # sigmoid and tanh take y
    gy = g.array(shape, dt, any_layout=True,
                 vals=values(draw, shape, g.profile, specials=GRAD_SPECIALS))
    # When arrays share memory, the last one written fills it: every array then holds
    # values that are valid for each role.
    shared = g.mutation == "alias"
    vals = values(draw, shape, g.profile, specials=GRAD_SPECIALS if shared else SPECIALS)
    v = g.array(shape, dt, any_layout=True, vals=np.clip(vals, lo, hi))
    out_vals = np.clip(values(draw, shape, g.profile, specials=GRAD_SPECIALS), lo, hi)
    kw = {"out": _out(g, gy, (gy, v), shape, dt, vals=out_vals if shared else None)}
    if name == "leaky_relu":
        kw["negative_slope"] = g.hyper(*SLOPE)
    if name == "gelu":
        kw["approximate"] = g.hyper(*APPROX)
    return g.case(name + "_backward", (gy, v), kw, "act_grad")


REDUCTION = (st.sampled_from(["mean", "sum", "none"]), ["avg", None, 1])


@st.composite
def cross_entropy_case(draw):
    g = Gen(draw, 3)
    dt = draw(st.sampled_from(FLOATS))
    n, c = draw(st.integers(0, 6)), draw(st.integers(1, 7))
    logits = g.array((n, c), dt, any_layout=True,
                     vals=values(draw, (n, c), g.profile, specials=BOUNDED_SPECIALS))
    kw = dict(reduction=g.hyper(*REDUCTION),
              label_smoothing=g.hyper(floats(0.0, 1.0, 0.0, 0.1), [-0.1, 1.5, NAN]),
              ignore_index=g.hyper(st.sampled_from([-100, 0, c - 1, 2**62]), [1.5, "x", None]),
              compute_grad=g.hyper(*BOOL))
    if draw(st.booleans()):
        lt = draw(st.sampled_from(INT_LABELS))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        lab = rng.integers(0, c, n)
        ign = kw["ignore_index"]
        if isinstance(ign, int) and n and np.can_cast(np.min_scalar_type(ign), lt):
            lab[rng.random(n) < 0.3] = ign
        if g.mutation == "hyper" and n and draw(st.booleans()):
            lab[draw(st.integers(0, n - 1))] = draw(st.sampled_from([-1, c, 2**40]))
            g.valid = False
        labels = g.array((n,), lt, any_layout=True, dtypes=INT_LABELS, vals=lab)
    else:
        # Rows of probabilities (NaN, zeros and subnormals sprinkled in): the fused pass
        # forms lse * sum(p) - sum(p * x), which overflows (or is inf - inf) for masses or
        # logits where -sum(p * log_softmax) would not.
        p = values(draw, (n, c), g.profile, nonneg=True, specials=GRAD_SPECIALS)
        with np.errstate(invalid="ignore"):
            p = p / np.maximum(np.nansum(p, axis=1, keepdims=True), 1e-300)
        labels = g.array((n, c), dt, any_layout=True, vals=p)
    grad = kw["compute_grad"] is True or kw["compute_grad"] is np.True_
    if grad or g.mutation == "hyper":
        kw["out"] = _out(g, logits, (logits,), (n, c), dt)
        g.valid = g.valid and (grad or kw["out"] is None)
    return g.case("softmax_cross_entropy", (logits, labels), kw, "ce")


@st.composite
def mse_case(draw):
    g = Gen(draw, 3)
    dt = draw(st.sampled_from(FLOATS))
    shape = draw(shapes())
    p = g.array(shape, dt, any_layout=True,
                vals=values(draw, shape, g.profile, specials=BOUNDED_SPECIALS))
    t = g.array(shape, dt, any_layout=True,
                vals=values(draw, shape, g.profile, specials=BOUNDED_SPECIALS))
    kw = dict(reduction=g.hyper(*REDUCTION), compute_grad=g.hyper(*BOOL))
    if kw["compute_grad"] is True or kw["compute_grad"] is np.True_:
        kw["out"] = _out(g, p, (p, t), shape, dt)
    return g.case("mse_loss", (p, t), kw, "mse")


ACTS = (st.sampled_from([None, "relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu"]),
        ["softplus", 1, "RELU"])


def _gemm_dims(draw):
    return [draw(st.sampled_from([0, 1, 2, 5, 9, 17, 70])) for _ in range(3)]


@st.composite
def matmul_case(draw):
    g = Gen(draw, 3, GEMM_SPECIALS)
    dt = draw(st.sampled_from(FLOATS))
    m, k, n = _gemm_dims(draw)
    a = g.array((m, k), dt, any_layout=True, aligned=True)
    b = g.array((k, n), dt, any_layout=True, aligned=True)
    out = None
    if draw(st.booleans()):
        out = g.array((m, n), dt, written=True, rows=True,
                      any_layout=draw(st.booleans()))
    return g.case("matmul", (a, b, out), {}, "gemm")


@st.composite
def linear_case(draw):
    g = Gen(draw, 4, GEMM_SPECIALS)
    dt = draw(st.sampled_from(FLOATS))
    m, k, n = _gemm_dims(draw)
    x = g.array((m, k), dt, any_layout=True, aligned=True)
    w = g.array((k, n), dt, any_layout=True, aligned=True)
    bias = g.array((n,), dt, any_layout=True, aligned=True) if draw(st.booleans()) else None
    kw = dict(activation=g.hyper(*ACTS), return_preact=g.hyper(*BOOL))
    if draw(st.booleans()):
        kw["out"] = g.array((m, n), dt, written=True, rows=True, any_layout=draw(st.booleans()))
    return g.case("linear", (x, w, bias), kw, "gemm")


@st.composite
def linear_backward_case(draw):
    g = Gen(draw, 5, GEMM_SPECIALS)
    dt = draw(st.sampled_from(FLOATS))
    m, k, n = _gemm_dims(draw)
    gy = g.array((m, n), dt, any_layout=True, aligned=True)
    x = g.array((m, k), dt, any_layout=True, aligned=True)
    w = g.array((k, n), dt, any_layout=True, aligned=True)
    act = g.hyper(*ACTS)
    kw = dict(activation=act, need_grad_x=g.hyper(*BOOL))
    src = draw(st.sampled_from(["y", "preact", "both", "none"]))
    if src in ("y", "both"):
        kw["y"] = g.array((m, n), dt, any_layout=True, aligned=True)
    if src in ("preact", "both"):
        kw["preact"] = g.array((m, n), dt, any_layout=True, aligned=True)
    invertible = act in ("relu", "sigmoid", "tanh")
    if act is not None and (src == "none" or (src == "y" and not invertible)):
        g.valid = False  # ValueError by contract
    return g.case("linear_backward", (gy, x, w), kw, "gemm_backward")


CASES = {
    "adam_step": adam_case(),
    "sgd_step": sgd_case(),
    "adam_step_multi": adam_multi_case(),
    "sgd_step_multi": sgd_multi_case(),
    **{name: forward_case(name) for name in FORWARD},
    **{name + "_backward": backward_case(name) for name in FORWARD},
    "softmax_cross_entropy": cross_entropy_case(),
    "mse_loss": mse_case(),
}
if hasattr(trainkern, "linear"):
    CASES.update(matmul=matmul_case(), linear=linear_case(),
                 linear_backward=linear_backward_case())
# Public names that are not kernels, each covered elsewhere.
NOT_KERNELS = {"__version__", "isa", "available_isas", "get_num_threads", "set_num_threads",
               "show_config", "roofline"}


# -- running and judging one case ---------------------------------------------------------------


def _np(x):
    if isinstance(x, memoryview):  # before isscalar, which counts memoryview as a scalar
        return np.asarray(x)
    if isinstance(x, np.ndarray) or np.isscalar(x) or x is None:
        return x
    if hasattr(x, "_a"):  # DLPackOnly
        return x._a
    return x.numpy()  # torch


def _close(actual, expected, op, dtype, what):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (what, actual.dtype, expected.dtype)
    if actual.dtype.kind != "f":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    rtol, atol = tolerance(op, dtype)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _within(actual, exact, scale, bound_rtol, atol, what):
    """|actual - exact| <= bound_rtol * scale + atol where exact is finite; elsewhere the same
    NaN or infinity."""
    actual = np.asarray(actual)
    assert actual.shape == exact.shape, (what, actual.shape, exact.shape)
    a = _f64(actual)
    fin = np.isfinite(exact)
    with np.errstate(invalid="ignore"):
        ok = np.abs(a - exact) <= bound_rtol * scale + atol
    same = (a == exact) | (np.isnan(a) & np.isnan(exact))
    bad = np.where(fin, ~ok, ~same)
    assert not bad.any(), (what, np.argwhere(bad)[:3].tolist(), a[bad][:3], exact[bad][:3])


def _act64(name, z):
    with np.errstate(all="ignore"):
        return ref._linear_act(name)(z) if name else z


def _check_gemm(case, result, rb):
    """matmul/linear against the float64 product of the same operands (tests/test_linear.py's
    bound: rtol * sqrt(K) * (|A| @ |B| + |bias|), plus the activation's own error)."""
    x, w, bias = build(case.args, rb, wrap=False)
    if case.fn == "matmul":
        bias = None  # the third argument is out
    act = case.kwargs.get("activation")
    dt = x.dtype
    with np.errstate(all="ignore"):
        pre = _f64(x) @ _f64(w)
        scale = np.abs(_f64(x)) @ np.abs(_f64(w))
        if bias is not None:
            pre, scale = pre + _f64(bias), scale + np.abs(_f64(bias))
    rtol, atol = tolerance("gemm", dt)
    rtol_a, atol_a = tolerance("linear_act", dt)
    kroot = math.sqrt(max(x.shape[1], 1))
    ys = result if case.kwargs.get("return_preact") in (True, np.True_) else (result, None)
    y, preact = (_np(r) for r in ys)
    exact = _act64(act, pre)
    grow = 1.13 if act else 1.0
    with np.errstate(all="ignore"):
        _within(y, exact, grow * rtol * kroot * scale + rtol_a * np.abs(exact), 1.0,
                atol + atol_a, "y")
    if preact is not None:
        _within(preact, pre, rtol * kroot * scale, 1.0, atol, "preact")


def _check_gemm_backward(case, result, rb):
    gy, x, w = build(case.args, rb, wrap=False)
    act = case.kwargs["activation"]
    y, pre = (build(case.kwargs.get(k), rb, False) for k in ("y", "preact"))
    from_pre = act not in ("relu", "sigmoid", "tanh") or y is None
    src = pre if from_pre else y
    with np.errstate(all="ignore"):
        if act is None:
            g = _f64(gy)
        elif act in ("relu", "sigmoid", "tanh"):
            # In the kernel's dtype and order (y rounded to it, y(1 - y) before grad_y; 1 - y^2
            # rounded once): whether a tiny g underflows to zero decides NaN or +-inf against
            # an infinite x, so the oracle's g must underflow exactly where the kernel's does.
            dt = x.dtype
            s = (_act64(act, _f64(src)) if from_pre else _f64(src)).astype(dt)
            gyd = np.asarray(gy, dtype=dt)
            g = _f64({"relu": lambda: np.where(s <= 0, dt.type(0), gyd),
                      "sigmoid": lambda: gyd * (s * (dt.type(1) - s)),
                      "tanh": lambda: gyd * (1 - _f64(s) ** 2).astype(dt)}[act]())
        elif act == "silu":
            g = ref.silu_backward(_f64(gy), _f64(src))
        else:
            g = ref.gelu_backward(_f64(gy), _f64(src),
                                  approximate="tanh" if act == "gelu_tanh" else "none")
    dt = x.dtype
    rtol, atol = tolerance("gemm", dt)
    rtol_a, _ = tolerance("linear_act", dt)
    m, n = g.shape
    gx, gw, gb = result
    # The derivative's own error (tests/test_vmath.py: a few ULP of the terms that cancel
    # where it crosses zero, e.g. GELU' near x = -0.75): act_grad's tolerance on each g,
    # carried through the products as |g| is.
    eg = np.zeros_like(g)
    if act is not None:
        rtol_g, atol_g = tolerance("act_grad", dt)
        eg = rtol_g * _finite_abs(g) + atol_g * _finite_abs(gy)
    with np.errstate(all="ignore"):
        ax, aw = np.abs(_f64(x)), np.abs(_f64(w))
        parts = [(gw, _f64(x).T @ g, ax.T @ np.abs(g), ax.T @ eg, m, "grad_weight"),
                 (gb, g.sum(0), np.abs(g).sum(0), eg.sum(0), m, "grad_bias")]
        if case.kwargs["need_grad_x"] in (True, np.True_):
            parts.append((gx, g @ _f64(w).T, np.abs(g) @ aw.T, eg @ aw.T, n, "grad_x"))
        else:
            assert gx is None
    for actual, exact, scale, carried, red, what in parts:
        assert actual.dtype == dt
        rel = rtol * math.sqrt(max(red, 1)) + rtol_a
        with np.errstate(all="ignore"):
            _within(actual, exact, rel * scale + carried, 1.0, atol, what)


def _finite_abs(x):
    return np.abs(np.nan_to_num(_f64(x), nan=0.0, posinf=0.0, neginf=0.0))


def _check_optim(case, op, tb, rb):
    """Every state array against the twin's. The registered tolerance is for O(1) terms; here
    hyper-parameters span their valid range (lr up to 2, eps down to 1e-12, huge values), so
    the absolute part scales with the size of the terms of the update at that element: the
    sum of |value| before and after over the tensor's arrays (the update can cancel the
    parameter, leaving the rounding error of the terms). NaN and infinities must match."""
    if case.fn.endswith("_multi"):
        lists = [a for a in (*case.args, case.kwargs.get("max_exp_avg_sqs"))
                 if isinstance(a, (list, tuple))]
        groups = [list(gr) for gr in zip(*lists)]
        for c in case.kwargs.get("step_counters") or []:
            np.testing.assert_array_equal(c.array(tb), c.array(rb), err_msg="step counter")
    else:
        groups = [all_views((case.args, case.kwargs))]
    rtol, atol = tolerance(op, groups[0][0].dtype if groups else np.float32)
    for gi, group in enumerate(groups):
        terms = sum(_finite_abs(v.array(case.bufs)) + _finite_abs(v.array(rb)) for v in group)
        for vi, v in enumerate(group):
            a, e = _f64(v.array(tb)), _f64(v.array(rb))
            with np.errstate(invalid="ignore"):
                ok = (a == e) | (np.isnan(a) & np.isnan(e)) | (
                    np.abs(a - e) <= rtol * np.abs(e) + atol * (1.0 + terms))
            assert ok.all(), (f"tensor {gi} array {vi}", np.argwhere(~ok)[:3].tolist(),
                              a[~ok][:3].tolist(), e[~ok][:3].tolist(), terms[~ok][:3].tolist())


def _check_values(case, result, expected, tb, rb):
    """Every argument view and the returned values against the reference run."""
    op = {"adam": "adam", "sgd": "sgd", "act": "act", "act_grad": "act_grad",
          "ce": "ce_grad", "mse": "mse"}[case.check]
    if case.check in ("adam", "sgd"):
        assert result is None and expected is None
        _check_optim(case, op, tb, rb)
        return
    views = all_views((case.args, case.kwargs))
    out = case.kwargs.get("out")
    for i, v in enumerate(views):
        if case.check == "ce" and out is not None and v.same_view(out):
            _close_ce_grad(case, v.array(tb), v.array(rb), f"argument view {i}")
            continue
        _close(v.array(tb), v.array(rb), op, v.dtype if v.dtype in FLOATS else None,
               f"argument view {i}")
    if case.check in ("act", "act_grad"):
        _close(_np(result), _np(expected), op, case.args[0].dtype, "result")
        return
    loss_op = "ce_loss" if case.check == "ce" else "mse"
    (loss, grad), (eloss, egrad) = result, expected
    assert type(loss) is type(eloss), (type(loss), type(eloss))
    _close(loss, eloss, loss_op, case.args[0].dtype, "loss")
    if egrad is None:
        assert grad is None
    elif case.check == "ce":
        _close_ce_grad(case, _np(grad), egrad, "grad")
    else:
        _close(_np(grad), egrad, op, case.args[0].dtype, "grad")


def _close_ce_grad(case, actual, expected, what):
    """The gradient p * sum(t) - t cancels where p ~ t: besides ce_grad's tolerance, allow
    a few ULP of the terms (ce_grad_terms: per unit of scale * (1 + sum(t)), scale being
    1/count for "mean"), which ce_grad's absolute part covers only for small targets."""
    x, lab = build(case.args, case.bufs, wrap=False)
    n, c = x.shape
    eps = float(case.kwargs["label_smoothing"])
    lab = np.asarray(lab)
    if lab.ndim == 1:
        count, tsum = int((lab != case.kwargs["ignore_index"]).sum()), np.ones(n)
    else:
        count, tsum = n, (_finite_abs(lab) * (1.0 - eps) + eps / c).sum(axis=1)
    scale = 1.0 / count if case.kwargs["reduction"] == "mean" and count else 1.0
    terms = scale * (1.0 + tsum)[:, None]
    rtol, atol = tolerance("ce_grad", x.dtype)
    _, per_term = tolerance("ce_grad_terms", x.dtype)
    a, e = _f64(actual), _f64(expected)
    assert a.shape == e.shape and actual.dtype == expected.dtype, what
    with np.errstate(invalid="ignore"):
        ok = (a == e) | (np.isnan(a) & np.isnan(e)) | (
            np.abs(a - e) <= rtol * np.abs(e) + atol + per_term * terms)
    assert ok.all(), (what, np.argwhere(~ok)[:3].tolist(), a[~ok][:3].tolist(),
                      e[~ok][:3].tolist())


def run(case):
    fn, twin = getattr(trainkern, case.fn), getattr(ref, case.fn)
    before = [b.copy() for b in case.bufs]
    tb = [b.copy() for b in case.bufs]
    args, kwargs = build(case.args, tb, wrap=True), build(case.kwargs, tb, wrap=True)
    previous = trainkern.isa()
    _core.set_isa(case.isa)
    trainkern.set_num_threads(case.threads)
    try:
        result = fn(*args, **kwargs)
    except (TypeError, ValueError) as e:
        for i, (b0, b1) in enumerate(zip(before, tb)):
            assert np.array_equal(b0, b1), f"refused call ({e}) changed buffer {i}"
        assert not case.valid, f"valid call refused: {type(e).__name__}: {e}"
        return "refused"
    finally:
        _core.set_isa(previous)
        _core._reset_num_threads()
    out = kwargs.get("out", args[2] if case.fn == "matmul" else None)
    if out is not None:  # out= is what comes back (the gradient, for losses)
        back = result[1] if case.check in ("ce", "mse") else result
        back = back[0] if case.fn == "linear" and isinstance(back, tuple) else back
        assert back is out, (type(back), type(out))
    # nothing written outside the arguments (guards, gaps, padding)
    for i, (b0, b1) in enumerate(zip(before, tb)):
        covered = np.zeros(b0.size, bool)
        for v in all_views((case.args, case.kwargs)):
            if v.buf == i:
                covered[64 + v.bytes_touched()] = True
        assert np.array_equal(b0[~covered], b1[~covered]), f"bytes outside the arrays written ({i})"
    rb = [b.copy() for b in case.bufs]
    if case.check == "gemm":
        _check_gemm(case, result, rb)
    elif case.check == "gemm_backward":
        _check_gemm_backward(case, result, rb)
    else:
        rargs, rkwargs = build(case.args, rb, wrap=False), build(case.kwargs, rb, wrap=False)
        with np.errstate(all="ignore"):
            expected = twin(*rargs, **rkwargs)
        _check_values(case, result, expected, tb, rb)
    return "accepted"


# -- the tests ------------------------------------------------------------------------------------


def test_every_public_function_is_fuzzed():
    assert set(trainkern.__all__) - NOT_KERNELS == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fuzz(name):
    seen = []

    @fuzz
    @given(CASES[name])
    def check(case):
        seen.append(run(case))

    check()
    # both outcomes were exercised (a bound that never lets a call through is no test)
    assert "accepted" in seen and "refused" in seen, seen


def _dlpack_capsule(shape, strides, data):
    """A DLPack capsule over `data` with any shape and strides (NumPy refuses to build such
    arrays itself): the importer must refuse sizes that do not fit, not trust them."""

    class DLDevice(ctypes.Structure):
        _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]

    class DLDataType(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]

    class DLTensor(ctypes.Structure):
        _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32),
                    ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                    ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]

    class DLManagedTensor(ctypes.Structure):
        _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p),
                    ("deleter", ctypes.c_void_p)]

    nd = len(shape)
    keep = [(ctypes.c_int64 * nd)(*shape), (ctypes.c_int64 * nd)(*strides), data]
    t = DLManagedTensor()
    t.dl_tensor = DLTensor(data.ctypes.data, DLDevice(1, 0), nd, DLDataType(2, 32, 1),
                           keep[0], keep[1], 0)
    keep.append(t)
    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    return new(ctypes.addressof(t), b"dltensor", None), keep


class _Capsule:
    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, **kw):
        return self.capsule

    def __dlpack_device__(self):
        return (1, 0)


@pytest.mark.parametrize("shape", [(2**62, 4), (2**32, 2**32), (2**31, 2**31, 2)])
def test_shapes_whose_size_overflows_int64_are_refused(shape):
    """Zero-stride views whose element count overflows int64, through DLPack (NumPy itself
    refuses to build them): refused with TypeError/ValueError, nothing written."""
    store = np.ones(4, np.float32)
    alive = []  # the capsules' structures, until the calls are done
    for what, call in [
        ("relu: x", lambda x: trainkern.relu(x)),
        ("sgd_step: grad", lambda x: trainkern.sgd_step(np.ones(4, np.float32), x, lr=0.1)),
        ("mse_loss: pred", lambda x: trainkern.mse_loss(x, x)),
    ]:
        cap, keep = _dlpack_capsule(shape, (0,) * len(shape), store)
        alive.append(keep)
        with pytest.raises(ValueError, match=f"^{what} could not be viewed through __dlpack__"):
            call(_Capsule(cap))
        np.testing.assert_array_equal(store, np.ones(4, np.float32))


@pytest.mark.parametrize("dtype", [">i8", ">f8", ">f4"])
def test_step_counters_in_swapped_byte_order_are_refused(dtype):
    """A big-endian int64 counter holding 5 was read as 360287970189639680."""
    p, g, m, v = ([np.ones(3, np.float32)] for _ in range(4))
    counter = np.array(5, dtype=dtype)
    before = [a[0].copy() for a in (p, m, v)]
    with pytest.raises(TypeError, match=r"step_counters\[0\] is not in native byte order"):
        trainkern.adam_step_multi(p, g, m, v, step_counters=[counter])
    assert counter == 5
    for a, b in zip((p, m, v), before):
        np.testing.assert_array_equal(a[0], b)
