"""The one place where test tolerances live: per op and dtype.

`assert_close(actual, expected, op, dtype)` compares against the oracle with the
tolerance registered here; a test never spells its own rtol/atol.
"""

import numpy as np

# (op, dtype name) -> (rtol, atol)
TOLERANCES = {
    # Same operations in the same order as the reference; the atol covers results that
    # cancel to near zero (values are O(1), so it is a few ULP of the inputs).
    ("adam", "float32"): (2e-6, 3e-7),
    ("adam", "float64"): (1e-14, 1e-15),
    ("sgd", "float32"): (2e-6, 3e-7),
    ("sgd", "float64"): (1e-14, 1e-15),
    # After 100 steps against torch.optim: 1e-6 relative to the parameters' scale (they are
    # O(1)); torch's own result differs by a few ULP between its AVX2/AVX-512 and its
    # default (no-FMA) code paths, and a parameter that crosses zero keeps that absolute error.
    ("adam_torch_100", "float32"): (1e-6, 1e-6),
    ("adam_torch_100", "float64"): (1e-12, 1e-12),
    ("sgd_torch_100", "float32"): (1e-6, 1e-6),
    ("sgd_torch_100", "float64"): (1e-12, 1e-12),
    # GEMM family (matmul, linear, linear_backward) against the float64 product of the same
    # operands: element (i, j) may be off by rtol * sqrt(max(K, 1)) * (|A| @ |B| + |bias|)[i, j]
    # + atol, where K is the length of the reduction. Rounding along a length-K sum grows like
    # sqrt(K) times the unit roundoff for random signs; the factor leaves a margin of a few.
    ("gemm", "float32"): (4e-7, 1e-30),
    ("gemm", "float64"): (8e-16, 1e-300),
    # An activation (or its derivative) in the epilogue adds its own error relative to the
    # activated value (vmath: a few ULP): rtol on |y| (or |g|), plus atol for values near 0.
    ("linear_act", "float32"): (1e-6, 1e-37),
    ("linear_act", "float64"): (1e-14, 1e-300),
    # Against torch autograd: both sides round, so twice the GEMM allowance.
    ("linear_torch", "float32"): (8e-7, 1e-30),
    ("linear_torch", "float64"): (1.6e-15, 1e-300),
}


def tolerance(op, dtype):
    name = np.dtype(dtype).name
    try:
        return TOLERANCES[(op, name)]
    except KeyError:
        raise KeyError(f"no tolerance registered for op={op!r} dtype={name!r}") from None


def assert_close(actual, expected, op, dtype=None, err_msg=""):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    rtol, atol = tolerance(op, dtype if dtype is not None else actual.dtype)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=err_msg)

# trainkern.torch against torch.optim after 100 steps of training a small MLP, as the
# relative error of each parameter tensor in norm, ||ours - torch|| / ||torch||. (Element-
# wise comparisons are meaningless there: the forward and backward passes amplify rounding
# differences, and torch's own fused and for-loop Adam differ by ~1e-7 in norm as well.)
TOLERANCES.update({
    ("torch_mlp_100", "float32"): (1e-6, 0.0),
    ("torch_mlp_100", "float64"): (1e-12, 0.0),
    # Two processes (DDP / ZeRO over gloo) against one with the same global batch: the
    # gradient all-reduce sums in another order.
    ("distributed", "float64"): (1e-12, 1e-14),
    # JAX arrays through trainkern.optim.adam_update against the NumPy reference.
    ("adam_jax", "float32"): (2e-6, 1e-7),
})

# Elementwise math, float32: worst error in ULP of the float32 spacing at the float64 value
# (subnormal spacing below FLT_MIN). Derivatives that cross zero (GELU, SiLU at x < 0) are
# measured in ULP of |term1| + |term2| instead, the scale their cancellation starts from.
ULPS = {
    "exp": 4,
    "expm1": 4,
    "erf": 4,
    "erfc": 4,
    "sigmoid": 4,
    "tanh": 4,
    "gelu_erf": 4,
    "gelu_tanh": 4,
    "silu": 4,
    "gelu_erf_grad": 8,
    "gelu_tanh_grad": 8,
    "silu_grad": 8,
}
# The same functions in float64: relative error against a 50-digit reference.
F64_RTOL = 1e-14


def ulp_error(actual, expected, scale=None):
    """Per-element error of float32 `actual` in float32 ULP at `expected` (float64).

    Where float32(expected) overflows, only the exact infinity passes; NaN must meet NaN.
    """
    a = np.asarray(actual).astype(np.float64)
    e = np.asarray(expected, dtype=np.float64)
    s = np.abs(e) if scale is None else np.asarray(scale, dtype=np.float64)
    with np.errstate(all="ignore"):
        expo = np.floor(np.log2(np.maximum(s, 2.0**-126)))
        err = np.abs(a - e) / 2.0 ** (expo - 23)
        e32 = e.astype(np.float32)
    err = np.where(np.isinf(e32), np.where(a == e32, 0.0, np.inf), err)
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    return np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))


def assert_ulps(actual, expected, op, x, scale=None):
    err = ulp_error(actual, expected, scale)
    i = int(np.argmax(err))
    limit = ULPS[op]
    assert err[i] <= limit, (
        f"{op}: {err[i]:.3g} ULP > {limit} at x={x.flat[i]!r}: got {np.asarray(actual).flat[i]!r}, "
        f"expected {np.asarray(expected).flat[i]!r} ({int((err > limit).sum())} elements over)"
    )

# Activations against trainkern.reference (float64 values rounded once); float32 forward is
# held to a few ULP (tests/test_vmath.py), subnormal results to a few subnormal steps.
TOLERANCES.update({
    ("act", "float32"): (8e-7, 1e-44),
    # The NumPy reference itself is off by up to ~1e-13 in the far negative tails (the rounding
    # of -x/sqrt(2) and of 2z, amplified by exp); test_vmath.py holds float64 to 1e-14 against
    # 50-digit mpmath instead.
    ("act", "float64"): (1e-12, 1e-320),
    # Derivatives that cross zero (GELU, SiLU for x < 0) are judged in absolute terms there.
    ("act_grad", "float32"): (4e-6, 1e-6),
    ("act_grad", "float64"): (1e-12, 1e-14),
    # torch computes in the tensor's dtype with its own formulas; its float32 GELU is off by
    # up to ~1e-6 absolute (1e-3 relative) near x = -3.5, where ours is within 4 ULP.
    ("act_torch", "float32"): (1e-5, 3e-6),
    ("act_torch", "float64"): (1e-12, 1e-13),
    # Cross-entropy: per-row losses in the input dtype, summed in float64.
    ("ce_loss", "float32"): (3e-6, 1e-7),
    ("ce_loss", "float64"): (1e-12, 1e-15),
    # p_j - eps/C cancels where p_j ~ eps/C: an absolute error of a few ULP of eps/C remains.
    ("ce_grad", "float32"): (5e-6, 3e-8),
    ("ce_grad", "float64"): (1e-12, 1e-16),
    # With probability labels the gradient p_j sum(t') - t'_j cancels where p_j ~ t'_j, which
    # may be anywhere up to 1: a few ULP of 1 absolute.
    ("ce_grad_probs", "float32"): (5e-6, 2e-7),
    ("ce_grad_probs", "float64"): (1e-12, 1e-15),
    ("ce_torch", "float32"): (1e-5, 1e-7),
    ("ce_torch", "float64"): (1e-12, 1e-14),
    # MSE: squares summed per block in the input dtype, blocks in float64.
    ("mse", "float32"): (1e-5, 1e-7),
    ("mse", "float64"): (1e-13, 1e-16),
})

# Fuzzing (tests/test_fuzz.py): the cross-entropy gradient p * sum(t) - t cancels where p ~ t;
# with probability targets of O(1) that leaves a few ULP of the terms, per unit of
# scale * (1 + sum(t)) (scale: 1/count for "mean"), on top of ce_grad's tolerance.
TOLERANCES.update({
    ("ce_grad_terms", "float32"): (0.0, 4 * 2.0**-23),
    ("ce_grad_terms", "float64"): (0.0, 4 * 2.0**-52),
})
