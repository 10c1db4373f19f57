"""Fits the polynomial coefficients of cpp/src/ops/vmath-inl.h and prints them as C++.

Each approximation is interpolated at Chebyshev nodes in 60-digit arithmetic (mpmath), which
is within a small factor of the minimax polynomial, then converted to the monomial basis the
kernels evaluate with Horner's rule, and rounded to float/double. The script also reports the
worst relative error of the rounded coefficients on a dense grid (evaluated in mpmath), so a
change of degree or interval can be judged before it is pasted in.

    python scripts/fit_vmath.py
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

mp.mp.dps = 60


def cheb_fit(f, lo, hi, deg):
    """Monomial coefficients (low order first) of the degree-`deg` interpolant of f on [lo, hi]."""
    lo, hi = mp.mpf(lo), mp.mpf(hi)
    n = deg + 1
    nodes = [
        (lo + hi) / 2 + (hi - lo) / 2 * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)
    ]
    # Solve the Vandermonde system in high precision: exact interpolation at the nodes.
    a = mp.matrix([[x**j for j in range(n)] for x in nodes])
    b = mp.matrix([f(x) for x in nodes])
    c = mp.lu_solve(a, b)
    return [c[j] for j in range(n)]


def rounded(coefs, dtype):
    return [mp.mpf(float(np.dtype(dtype).type(float(c)))) for c in coefs]


def horner(coefs, x):
    r = mp.mpf(0)
    for c in reversed(coefs):
        r = r * x + c
    return r


def worst(f, approx, lo, hi, m=2000, scale=None):
    """Largest |approx - f| / scale on a grid of m + 1 points; scale defaults to |f|."""
    e = mp.mpf(0)
    for k in range(m + 1):
        x = mp.mpf(lo) + (mp.mpf(hi) - mp.mpf(lo)) * k / m
        fx = f(x)
        if fx != 0:
            e = max(e, abs(approx(x) - fx) / (abs(fx) if scale is None else scale(x)))
    return float(e)


def emit(name, coefs, dtype):
    suffix = "f" if dtype == np.float32 else ""
    vals = [repr(float(np.dtype(dtype).type(float(c)))) for c in coefs]
    print(f"  // {name}")
    print("  {" + ", ".join(v + suffix for v in vals) + "},")


def q_tail(a):
    """Upper tail of the standard normal: Q(a) = erfc(a / sqrt(2)) / 2."""
    return mp.erfc(a / mp.sqrt(2)) / 2


def mills(a):
    """R(a) = Q(a) * exp(a^2 / 2): smooth, 1/2 at 0, ~ 1/(a sqrt(2 pi)) for large a."""
    return q_tail(a) * mp.exp(a * a / 2)


def exp_tail(r):
    """(exp(r) - 1 - r) / r^2, from its series: the direct form cancels near r = 0."""
    return mp.nsum(lambda k: r**k / mp.factorial(k + 2), [0, mp.inf])


def underflow_point(dtype, g):
    """Smallest a with g(a) below half the least subnormal (g decreasing)."""
    tiny = mp.mpf(2) ** (-150 if dtype == np.float32 else -1075)
    return mp.findroot(lambda a: mp.log(g(a)) - mp.log(tiny), 14 if dtype == np.float32 else 38)


def gelu_neg(a):
    """-GELU(-a) = a Q(a)."""
    return a * q_tail(a)


def gelu_grad_neg(a):
    """-GELU'(-a) = a phi(a) - Q(a)."""
    return a * mp.npdf(a) - q_tail(a)


def fit_t_poly(amax, rk, rdeg, dtype):
    """double: R(a) = t P(t), t = k / (k + a); the rounding of t costs ~1e-16 only."""
    k = mp.mpf(rk)
    tmin = 1 / (1 + amax / k)
    rp = cheb_fit(lambda t: mills(k * (1 / t - 1)) / t, tmin, 1, rdeg)
    rr = rounded(rp, dtype)
    err = worst(lambda t: mills(k * (1 / t - 1)), lambda t: t * horner(rr, t), tmin, 1)
    print(f"normal tail: k {rk}, degree {rdeg}: rel err {err:.3g}")
    emit(f"R(a) = t P(t), t = 1 / (1 + a / {rk})", rr, dtype)


def mills_table(dtype, deg=6):
    """float: R(a) piecewise on 16 intervals, a polynomial of degree `deg` in f = a - lo each.

    The intervals split a + 1 by its exponent and two leading mantissa bits ([0, 1/4), ...,
    [13, 15)), so that they are narrow where R curves most; the kernel reads the index from
    the bits of a + 1 and the coefficients with one table lookup each. Horner in the local f
    starts from the dominant constant term, so its rounding stays near half an ULP (the
    global rational N(a) / D(a) it replaces lost up to ~4 ULP in evaluation).
    """
    los, coefs, errs = [0.0] * 16, [[0.0] * 16 for _ in range(deg + 1)], []
    for e in range(4):
        for m in range(4):
            lo = 2.0**e * (1 + m / 4) - 1
            hi = 2.0**e * (1 + (m + 1) / 4) - 1
            idx = (12 + 4 * e + m) % 16  # (bits(lo + 1) >> 21) % 16
            c = rounded(cheb_fit(lambda f, lo=lo: mills(f + lo), 0, hi - lo, deg), dtype)
            errs.append(
                worst(lambda f, lo=lo: mills(f + lo), lambda f, c=c: horner(c, f), 0, hi - lo, 200)
            )
            los[idx] = lo
            for j in range(deg + 1):
                coefs[j][idx] = c[j]
    print(f"normal tail: 16 intervals, degree {deg}: rel err {max(errs):.3g}")
    emit("interval starts", los, dtype)
    for j in range(deg + 1):
        emit(f"R table: coefficient {j} of f^{j}", coefs[j], dtype)


GT_K = 2 * mp.sqrt(2 / mp.pi)  # GELU tanh form: x sigmoid(u), u = K (x + A x^3)
GT_A = mp.mpf("0.044715")


def gelu_tanh_neg(a):
    """-GELU_tanh(-a) = a sigmoid(-u(a))."""
    return a / (1 + mp.exp(GT_K * (a + GT_A * a**3)))


def gelu_tanh_grad_terms(a):
    """The two terms of GELU_tanh'(x) = s + x s (1 - s) u'(x) at x = -a, s = sigmoid(u(x))."""
    x = -a
    s = 1 / (1 + mp.exp(-GT_K * (x + GT_A * x**3)))
    return s, x * s * (1 - s) * GT_K * (1 + 3 * GT_A * x * x)


def gelu_tanh_grad_neg(a):
    return sum(gelu_tanh_grad_terms(a))


# The central tables (float, AVX-512: a 32-entry permute): each GELU form g has
# g(x) - g(-x) = x and g'(x) + g'(-x) = 1, so a table of g(-a) (or g'(-a)) over a = |x| < 63/16
# gives both signs.
# (table, what, fn(a), fn(0) = 0, the scale of an error: |fn|, or for a derivative the sum
# of its terms' magnitudes, as tests/test_vmath.py measures it where the sum cancels)
CENTRAL = [
    ("gelu_central", "a Q(a) = -GELU(-a)", gelu_neg, True, None),
    ("gelu_central_grad", "GELU'(-a) = Q(a) - a phi(a)", lambda a: -gelu_grad_neg(a), False,
     lambda a: q_tail(a) + a * mp.npdf(a)),
    ("gelu_tanh_central", "a sigmoid(-u(a)) = -GELU_tanh(-a)", gelu_tanh_neg, True, None),
    ("gelu_tanh_central_grad", "GELU_tanh'(-a)", gelu_tanh_grad_neg, False,
     lambda a: sum(abs(t) for t in gelu_tanh_grad_terms(a))),
]


def central_table(name, what, fn, zero_at_0, scale, dtype=np.float32, deg=5):
    """fn(a) for a < 63/16 on 32 intervals of width 1/8 centred at k/8, a polynomial of degree
    `deg` in f = a - k/8 each; where fn(0) = 0 the first, on [0, 1/16], has no constant term,
    so that fn keeps its relative accuracy near 0.
    """
    coefs, errs = [[0.0] * 32 for _ in range(deg + 1)], []
    for k in range(32):
        c = mp.mpf(k) / 8
        lo, hi = (0 if k == 0 else -mp.mpf(1) / 16), mp.mpf(1) / 16
        if k == 0 and zero_at_0:
            p = cheb_fit(lambda f: fn(f) / f if f != 0 else fn(mp.mpf(10) ** -30) * 10**30,
                         lo, hi, deg - 1)
            cs = [mp.mpf(0)] + rounded(p, dtype)
        else:
            cs = rounded(cheb_fit(lambda f, c=c: fn(c + f), lo, hi, deg), dtype)
        errs.append(
            worst(lambda f, c=c: fn(c + f), lambda f, cs=cs: horner(cs, f),
                  mp.mpf(1) / 10**6 if k == 0 else lo, hi, 100,
                  scale=scale and (lambda f, c=c: scale(c + f)))
        )
        for j in range(deg + 1):
            coefs[j][k] = cs[j]
    print(f"{name}: {what}, 32 centred intervals, degree {deg}: rel err {max(errs):.3g}")
    for j in range(deg + 1):
        emit(f"{name}: coefficient {j} of f^{j}", coefs[j], dtype)


def main():
    ln2h = mp.log(2) / 2
    for dtype, pdeg, rk, rdeg, edeg in [(np.float32, 4, 4, 9, 6), (np.float64, 9, 4, 22, 11)]:
        tname = np.dtype(dtype).name
        print(f"==== {tname}")
        # exp(r) = 1 + r + r^2 P(r) on [-ln2/2, ln2/2]
        p = cheb_fit(exp_tail, -ln2h, ln2h, pdeg)
        pr = rounded(p, dtype)
        err = worst(mp.exp, lambda r, pr=pr: 1 + r + r * r * horner(pr, r), -ln2h, ln2h)
        err1 = worst(mp.expm1, lambda r, pr=pr: r + r * r * horner(pr, r), -ln2h, ln2h)
        print(f"exp poly degree {pdeg + 2}: rel err exp {err:.3g}, expm1 {err1:.3g}")
        emit("exp: 1 + r + r^2 P(r), P low order first", pr, dtype)
        # Normal tail Q(a) = exp(-a^2/2) R(a)
        amax = underflow_point(dtype, gelu_neg)
        amax_grad = underflow_point(dtype, gelu_grad_neg)
        print(f"GELU(-a) underflows past a = {float(amax)!r}, GELU'(-a) past {float(amax_grad)!r}")
        # The tail is fitted up to where the gradient underflows, the later of the two.
        amax = amax_grad
        if dtype == np.float32:
            # float: a table of local polynomials (a polynomial in t would turn the rounding
            # of t into ~k ULP of error in a).
            mills_table(dtype)
            for args in CENTRAL:
                central_table(*args)
            # exp(-z/2) on [-ln2, ln2]: GELU's exp(-a^2/2) with the halving folded in
            enh = cheb_fit(lambda z: mp.exp(-z / 2), -2 * ln2h, 2 * ln2h, 6)
            er = rounded(enh, dtype)
            err = worst(
                lambda z: mp.exp(-z / 2), lambda z, er=er: horner(er, z), -2 * ln2h, 2 * ln2h
            )
            print(f"exp(-z/2) degree 6: rel err {err:.3g}")
            emit("exp(-z/2), low order first", er, dtype)
        else:
            fit_t_poly(amax, rk, rdeg, dtype)
        # erf(x) = x E(x^2) for |x| <= 1/2
        e = cheb_fit(
            lambda s: mp.erf(mp.sqrt(s)) / mp.sqrt(s) if s != 0 else 2 / mp.sqrt(mp.pi),
            0,
            mp.mpf(1) / 4,
            edeg,
        )
        er = rounded(e, dtype)
        lo, hi = mp.mpf(1) / 10**6, mp.mpf(1) / 2
        err = worst(mp.erf, lambda x, er=er: x * horner(er, x * x), lo, hi)
        print(f"erf small degree {2 * edeg + 1}: rel err {err:.3g}")
        emit("erf(x) = x E(x^2), |x| <= 1/2", er, dtype)


if __name__ == "__main__":
    main()
