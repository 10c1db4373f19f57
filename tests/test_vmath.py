"""Accuracy of the vectorised math (cpp/src/ops/vmath-inl.h) on every target.

float32 is swept densely (random bit patterns over the whole range, near 0, near the
saturation and underflow points, special values) against float64 formulas; float64 is checked
against 50-digit mpmath on a smaller sample.
"""

import functools
import math

import numpy as np
import pytest
from tolerances import F64_RTOL, ULPS, assert_ulps
from trainkern import _core

FUNCS = list(ULPS)
K = 2.0 * math.sqrt(2.0 / math.pi)  # GELU tanh form: u = K (x + A x^3) = 2z
A = 0.044715

# Where each function saturates or underflows: swept densely on top of the common points.
EDGES = {
    "exp": [(-104.5, -85.0), (85.0, 89.0)],
    "expm1": [(-20.0, -15.0), (15.0, 19.0), (85.0, 89.0)],
    "erf": [(3.5, 4.5), (-4.5, -3.5)],
    "erfc": [(9.0, 10.5), (-4.5, -3.5)],
    "sigmoid": [(-105.0, -85.0), (15.0, 18.0)],
    "tanh": [(8.5, 9.5), (-9.5, -8.5)],
    "gelu_erf": [(-14.6, -12.5), (4.5, 6.5)],
    "gelu_tanh": [(-10.8, -9.0), (4.0, 6.0)],
    "silu": [(-110.0, -85.0), (15.0, 20.0)],
    "gelu_erf_grad": [(-14.7, -12.5), (4.5, 6.5), (-0.8, -0.7)],
    "gelu_tanh_grad": [(-10.9, -9.0), (4.0, 6.0), (-0.8, -0.7)],
    "silu_grad": [(-110.0, -85.0), (15.0, 20.0), (-1.3, -1.25)],
}

SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0]


def _f32_specials():
    fi = np.finfo(np.float32)
    return np.array(
        SPECIALS
        + [fi.max, -fi.max, fi.tiny, -fi.tiny, fi.smallest_subnormal, -fi.smallest_subnormal],
        dtype=np.float32,
    )


@functools.cache
def f32_points(name):
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    tiny = np.logspace(-45, 0.5, 60_000).astype(np.float32)
    parts = [bits, tiny, -tiny, np.linspace(-20, 20, 200_001, dtype=np.float32), _f32_specials()]
    for lo, hi in EDGES[name]:
        parts.append(np.linspace(lo, hi, 40_001, dtype=np.float32))
    return np.concatenate(parts)


def _erfc(x):
    return np.frompyfunc(math.erfc, 1, 1)(x).astype(np.float64)


def _sig(u):
    """sigmoid(u) and sigmoid(-u) in float64 without overflow."""
    e = np.exp(-np.abs(u))
    pos = 1.0 / (1.0 + e)
    neg = e / (1.0 + e)
    return np.where(u >= 0, pos, neg), np.where(u >= 0, neg, pos)


def ref64(name, x):
    """float64 value (and, for derivatives, the scale |term1| + |term2|)."""
    with np.errstate(all="ignore"):  # signalling NaN bit patterns warn on the cast
        x = x.astype(np.float64)
        inf_lim = np.where(x > 0, x, 0.0)  # x * (something -> 1 or 0) at +-inf
        if name == "exp":
            return np.exp(x), None
        if name == "expm1":
            return np.expm1(x), None
        if name == "erf":
            return np.frompyfunc(math.erf, 1, 1)(x).astype(np.float64), None
        if name == "erfc":
            return _erfc(x), None
        if name == "sigmoid":
            return _sig(x)[0], None
        if name == "tanh":
            return np.tanh(x), None
        if name == "gelu_erf":
            v = x * 0.5 * _erfc(-x / math.sqrt(2.0))
            return np.where(np.isinf(x), inf_lim, v), None
        if name == "gelu_tanh":
            v = x * _sig(K * (x + A * x**3))[0]
            return np.where(np.isinf(x), inf_lim, v), None
        if name == "silu":
            return np.where(np.isinf(x), inf_lim, x * _sig(x)[0]), None
        step = (x > 0).astype(np.float64)
        if name == "gelu_erf_grad":
            t1 = 0.5 * _erfc(-x / math.sqrt(2.0))
            t2 = x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        elif name == "silu_grad":
            s, sm = _sig(x)
            t1, t2 = s, x * s * sm
        elif name == "gelu_tanh_grad":
            s, sm = _sig(K * (x + A * x**3))
            t1, t2 = s, x * K * (1.0 + 3.0 * A * x * x) * s * sm
        else:
            raise KeyError(name)
        t2 = np.where(np.isinf(x), 0.0, t2)
        v = np.where(np.isinf(x), step, t1 + t2)
        return v, np.abs(t1) + np.abs(t2)


@functools.cache
def f32_reference(name):
    return ref64(name, f32_points(name))


@pytest.mark.parametrize("name", FUNCS)
def test_float32_ulps(isa, name):
    x = f32_points(name)
    expected, scale = f32_reference(name)
    got = _core._vmath_eval(name, x)
    assert got.dtype == np.float32
    assert_ulps(got, expected, name, x, scale)


@pytest.mark.parametrize("name", ["sigmoid", "silu", "gelu_erf", "gelu_tanh", "exp"])
def test_subnormal_results_are_rounded_once(isa, name):
    # The outputs here are subnormal; an error of one subnormal step is one ULP.
    lo, hi = EDGES[name][0]
    x = np.linspace(lo, hi, 20_001, dtype=np.float32)
    expected, _ = ref64(name, x)
    got = _core._vmath_eval(name, x)
    assert (np.abs(expected) < np.finfo(np.float32).tiny).any()
    assert_ulps(got, expected, name, x)


def test_special_values(isa):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype=np.float32)
    limits = {
        "exp": [np.nan, np.inf, 0.0, 1.0, 1.0],
        "sigmoid": [np.nan, 1.0, 0.0, 0.5, 0.5],
        "tanh": [np.nan, 1.0, -1.0, 0.0, -0.0],
        "erf": [np.nan, 1.0, -1.0, 0.0, -0.0],
        "erfc": [np.nan, 0.0, 2.0, 1.0, 1.0],
        "gelu_erf": [np.nan, np.inf, 0.0, 0.0, 0.0],
        "gelu_tanh": [np.nan, np.inf, 0.0, 0.0, 0.0],
        "silu": [np.nan, np.inf, 0.0, 0.0, 0.0],
        "gelu_erf_grad": [np.nan, 1.0, 0.0, 0.5, 0.5],
        "gelu_tanh_grad": [np.nan, 1.0, 0.0, 0.5, 0.5],
        "silu_grad": [np.nan, 1.0, 0.0, 0.5, 0.5],
    }
    for dt in (np.float32, np.float64):
        for name, want in limits.items():
            got = _core._vmath_eval(name, x.astype(dt))
            np.testing.assert_array_equal(got, np.array(want, dtype=dt), err_msg=f"{name} {dt}")
    # odd functions keep the sign of zero
    for name in ("tanh", "erf"):
        assert np.signbit(_core._vmath_eval(name, np.array([-0.0]))[0])


def test_every_lane_and_tail(isa):
    # Lengths below, at and above one vector; each element must match its own reference.
    for n in (1, 3, 7, 8, 9, 15, 16, 17, 33):
        x = np.linspace(-3, 3, n).astype(np.float32)
        expected, _ = ref64("gelu_erf", x)
        assert_ulps(_core._vmath_eval("gelu_erf", x), expected, "gelu_erf", x)


mp = None


def _mp():
    global mp
    if mp is None:
        mp = pytest.importorskip("mpmath")
        mp.mp.dps = 50
    return mp


def _mp_ref(name, v):
    m = _mp()
    x = m.mpf(float(v))
    if m.isnan(x):
        return float("nan")
    if name == "exp":
        return m.exp(x)
    if name == "expm1":
        return m.expm1(x)
    if name == "erf":
        return m.erf(x)
    if name == "erfc":
        return m.erfc(x) if x < 1e4 else 0.0
    if m.isinf(x):
        if name.endswith("_grad"):
            return 1.0 if x > 0 else 0.0
        return {"sigmoid": 1.0 if x > 0 else 0.0, "tanh": m.sign(x)}.get(name, x if x > 0 else 0.0)
    if abs(x) > 1e4:  # past every saturation point; mpmath's erfc overflows out here
        lim = _mp_ref(name, m.inf if x > 0 else -m.inf)
        return x if lim == m.inf else lim
    sig = lambda u: 1 / (1 + m.exp(-u))  # noqa: E731
    k, a = 2 * m.sqrt(2 / m.pi), m.mpf("0.044715")
    if name == "sigmoid":
        return sig(x)
    if name == "tanh":
        return m.tanh(x)
    if name == "gelu_erf":
        return x * m.erfc(-x / m.sqrt(2)) / 2
    if name == "gelu_tanh":
        return x * sig(k * (x + a * x**3))
    if name == "silu":
        return x * sig(x)
    if name == "gelu_erf_grad":
        return m.erfc(-x / m.sqrt(2)) / 2 + x * m.npdf(x)
    if name == "silu_grad":
        s = sig(x)
        return s + x * s * (1 - s)
    if name == "gelu_tanh_grad":
        u = k * (x + a * x**3)
        s = sig(u)
        return s + x * k * (1 + 3 * a * x * x) * s * (1 - s)
    raise KeyError(name)


F64_EDGES = {
    "exp": (-746.0, 710.0),
    "expm1": (-40.0, 40.0),
    "erf": (-6.0, 6.0),
    "erfc": (-6.0, 27.5),
    "sigmoid": (-746.0, 40.0),
    "tanh": (-20.0, 20.0),
    "gelu_erf": (-38.7, 9.0),
    "gelu_tanh": (-27.0, 9.0),
    "silu": (-750.0, 40.0),
    "gelu_erf_grad": (-38.7, 9.0),
    "gelu_tanh_grad": (-27.0, 9.0),
    "silu_grad": (-750.0, 40.0),
}


@functools.cache
def f64_case(name):
    lo, hi = F64_EDGES[name]
    tiny = np.logspace(-300, 0, 150)
    x = np.concatenate(
        [np.linspace(lo, hi, 1500), tiny, -tiny, [0.0, np.inf, -np.inf, 1e300, -1e300]]
    )
    ref = np.array([float(_mp_ref(name, v)) for v in x])
    if name.endswith("_grad"):
        # scale of the two terms, so that the zero crossing is judged by its inputs
        d = {"gelu_erf_grad": "gelu_erf", "silu_grad": "silu", "gelu_tanh_grad": "gelu_tanh"}[name]
        with np.errstate(all="ignore"):
            scale = np.maximum(np.abs(ref), np.abs(ref64(name, x)[1]))
    else:
        d, scale = None, np.abs(ref)
    del d
    return x, ref, scale


@pytest.mark.parametrize("name", FUNCS)
def test_float64_relative(isa, name):
    x, ref, scale = f64_case(name)
    got = _core._vmath_eval(name, x)
    assert got.dtype == np.float64
    with np.errstate(all="ignore"):
        err = np.abs(got - ref) / np.maximum(scale, np.finfo(np.float64).tiny)
    same = (got == ref) | (np.isnan(got) & np.isnan(ref))
    err = np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))
    i = int(np.argmax(err))
    assert err[i] <= F64_RTOL, (
        f"{name}: rel err {err[i]:.3g} at x={x[i]!r}: {got[i]!r} vs {ref[i]!r}"
    )


@pytest.mark.parametrize("name", ["gelu_erf", "gelu_tanh", "gelu_erf_grad", "gelu_tanh_grad"])
def test_gelu_blocks_by_range(isa, name):
    # The elementwise loops take blocks of 512 inputs all within |x| < 63/16 by tables of
    # local polynomials and other blocks by the general form: both, and the edge, to the
    # functions' ULP bounds, through trainkern.gelu / gelu_backward.
    import trainkern

    rng = np.random.default_rng(11)
    edge = np.float32(63 / 16)
    near = np.nextafter(edge, np.float32(0))
    x = rng.standard_normal(256 * 64).astype(np.float32)
    x[::1024] = np.float32(9.5)  # one large input spoils every fourth block
    x[300:600] = np.linspace(-near, near, 300, dtype=np.float32)  # the tables' edges
    x[5000] = edge  # just outside: that block takes the general form
    x[6000:6256] = np.linspace(-edge, edge, 256, dtype=np.float32)
    approximate = "tanh" if "tanh" in name else "none"
    if name.endswith("_grad"):
        got = trainkern.gelu_backward(np.ones_like(x), x, approximate)
    else:
        got = trainkern.gelu(x, approximate)
    expected, scale = ref64(name, x)
    assert_ulps(got, expected, name, x, scale)
