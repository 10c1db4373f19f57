"""matmul, linear and linear_backward on every target, against the float64 product.

Each result element is held to a bound that scales with the reduction length K and with the
size of the terms summed (|A| @ |B|), registered in tolerances.py. The shapes reach every
path of the GEMM: M == 1 (matrix-vector), short M (skinny, up to 64 rows), the packed
Goto/BLIS nest (M > 64, several K blocks), edges that are not multiples of the register
tile, and operands in every layout (C, F, strided, offset views).
"""

import math

import numpy as np
import pytest
import trainkern
from tolerances import tolerance
from trainkern import reference as ref

ACTIVATIONS = [None, "relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu"]
INVERTIBLE = {"relu", "sigmoid", "tanh"}


def layout(x, kind):
    """x (a fresh copy) as a C-contiguous, F-contiguous or strided offset view."""
    if kind == "C":
        return np.ascontiguousarray(x)
    if kind == "F":
        return np.asfortranarray(x)
    # Strided, offset view into a larger array whose other elements are NaN: reading any of
    # them would show up in the result.
    big = np.full((2 * x.shape[0] + 3, 3 * x.shape[1] + 2), np.nan, dtype=x.dtype)
    v = big[1 : 1 + 2 * x.shape[0] : 2, 2 : 2 + 3 * x.shape[1] : 3]
    v[...] = x
    return v


def f64(x):
    return np.asarray(x, dtype=np.float64)


def act64(name, z):
    return ref._linear_act(name)(z) if name else z


def check_product(actual, a, b, dtype, bias=None, act=None, what="result"):
    """actual ~ act(a @ b + bias), all from the same (rounded) operands, in float64."""
    a64, b64 = f64(a), f64(b)
    k = a64.shape[1]
    exact = a64 @ b64
    scale = np.abs(a64) @ np.abs(b64)
    if bias is not None:
        exact = exact + f64(bias)
        scale = scale + np.abs(f64(bias))
    rtol, atol = tolerance("gemm", dtype)
    bound = rtol * math.sqrt(max(k, 1)) * scale + atol
    if act is not None:
        y = act64(act, exact)
        # The activations here have slopes below 1.13; the activated value adds its own ULPs.
        rtol_a, atol_a = tolerance("linear_act", dtype)
        bound = 1.13 * bound + rtol_a * np.abs(y) + atol_a
        exact = y
    assert actual.shape == exact.shape, (actual.shape, exact.shape)
    err = np.abs(f64(actual) - exact)
    bad = ~(err <= bound)
    assert not bad.any(), (
        f"{what}: {bad.sum()} of {bad.size} elements off, worst excess "
        f"{np.max(np.where(bad, err - bound, 0)):.3g} at {np.argwhere(bad)[0]}"
    )


def operands(rng, m, k, n, dtype):
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    return a, b, bias


# -- products ------------------------------------------------------------------------------

SHAPES = [
    (1, 7, 1),  # matrix-vector, tiny
    (1, 257, 65),  # matrix-vector, odd columns
    (7, 17, 63),  # skinny, one short tile
    (63, 65, 17),  # skinny, several tiles, narrow N
    (65, 1, 257),  # packed path, K of one
    (130, 257, 70),  # packed path, row and column edges
]


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("la", ["C", "F", "S"])
@pytest.mark.parametrize("lb", ["C", "F", "S"])
def test_matmul_every_layout(isa, dtype, rng, m, k, n, la, lb):
    a, b, _ = operands(rng, m, k, n, dtype)
    c = trainkern.matmul(layout(a, la), layout(b, lb))
    assert c.dtype == dtype and c.flags.c_contiguous
    check_product(c, a, b, dtype)


@pytest.mark.parametrize(
    "m,k,n",
    [(1, 1000, 257), (17, 1000, 65), (257, 63, 1000), (1000, 65, 7), (64, 1000, 1000),
     (32, 1000, 300), (8, 65, 1000),  # rows spread evenly over the tiles (B streamed, B in L2)
     (1, 37, 140001)],  # a matrix-vector product whose rows are summed in several chunks
)
def test_linear_odd_sizes(isa, dtype, rng, m, k, n):
    if isa == "scalar" and m * k * n > 10**7:
        n = 129  # the same odd M and K edges at a size that stays quick under emulation
    a, b, bias = operands(rng, m, k, n, dtype)
    check_product(trainkern.linear(a, b, bias), a, b, dtype, bias)
    # A torch-style weight: the (n, k) matrix seen through .T
    check_product(trainkern.linear(a, np.ascontiguousarray(b.T).T, bias), a, b, dtype, bias)


def test_several_k_blocks_and_threads(isa, dtype, rng, threads):
    # K beyond one cache block, threads splitting M (sharing the packed B panel), short M
    # (skinny), and N (each thread packing its own columns of B). (20, 600, 1088): short M
    # over a row-major B beyond L2 in whole slivers, copied into the panel by the tiles.
    for m, k, n in ((200, 2100, 130), (40, 2100, 130), (130, 1100, 600), (20, 600, 1088)):
        a, b, bias = operands(rng, m, k, n, dtype)
        results = []
        for t in (1, 2):
            trainkern.set_num_threads(t)
            results.append(trainkern.linear(a, b, bias, activation="relu"))
        check_product(results[0], a, b, dtype, bias, "relu")
        # Never split K: the same bits for any thread count.
        np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("m,k,n", [(1, 33, 70), (9, 40, 65), (70, 50, 130)])
def test_linear_activations(isa, dtype, rng, act, m, k, n):
    a, b, bias = operands(rng, m, k, n, dtype)
    a *= 0.5  # keep the pre-activations where the functions are not flat
    y, pre = trainkern.linear(a, b, bias, activation=act, return_preact=True)
    check_product(pre, a, b, dtype, bias, what="preact")
    check_product(y, a, b, dtype, bias, act, what="y")
    # Without return_preact the same y comes back alone, and without a bias too.
    np.testing.assert_array_equal(trainkern.linear(a, b, bias, activation=act), y)
    check_product(trainkern.linear(a, b, activation=act), a, b, dtype, None, act)


def test_reference_twin_agrees(rng, dtype):
    a, b, bias = operands(rng, 20, 30, 40, dtype)
    for act in ACTIVATIONS:
        y_ref, pre_ref = ref.linear(a, b, bias, activation=act, return_preact=True)
        check_product(pre_ref, a, b, dtype, bias)
        check_product(trainkern.linear(a, b, bias, activation=act), a, b, dtype, bias, act)
        check_product(y_ref, a, b, dtype, bias, act)
    check_product(ref.matmul(a, b), a, b, dtype)


@pytest.mark.parametrize("m,n", [(5, 3), (1, 9), (70, 130)])
def test_k_zero(isa, dtype, m, n):
    a = np.zeros((m, 0), dtype)
    b = np.zeros((0, n), dtype)
    bias = np.linspace(-2, 2, n).astype(dtype)
    np.testing.assert_array_equal(trainkern.matmul(a, b), np.zeros((m, n), dtype))
    y, pre = trainkern.linear(a, b, bias, activation="relu", return_preact=True)
    np.testing.assert_array_equal(pre, np.broadcast_to(bias, (m, n)))
    np.testing.assert_array_equal(y, np.broadcast_to(np.maximum(bias, 0), (m, n)))


@pytest.mark.parametrize("m,k,n", [(0, 5, 3), (4, 5, 0), (0, 0, 0)])
def test_empty_m_or_n(isa, dtype, m, k, n):
    c = trainkern.linear(np.ones((m, k), dtype), np.ones((k, n), dtype), np.ones(n, dtype))
    assert c.shape == (m, n) and c.dtype == dtype


def test_torch_operands(dtype, rng):
    torch = pytest.importorskip("torch")
    a, b, bias = operands(rng, 9, 33, 17, dtype)
    layer_w = torch.from_numpy(np.ascontiguousarray(b.T))  # torch's (out, in) weight
    y = trainkern.linear(torch.from_numpy(a), layer_w.T, torch.from_numpy(bias))
    check_product(y, a, b, dtype, bias)


# -- out= --------------------------------------------------------------------------------------


def test_out_is_written_and_returned(isa, dtype, rng):
    a, b, bias = operands(rng, 13, 20, 70, dtype)
    big = np.full((13, 80), 7, dtype)
    out = big[:, 3:73]  # rows not contiguous with each other
    y = trainkern.linear(a, b, bias, activation="tanh", out=out)
    assert y is out
    check_product(out, a, b, dtype, bias, "tanh")
    assert (big[:, :3] == 7).all() and (big[:, 73:] == 7).all()
    assert trainkern.matmul(a, b, out=out) is out
    check_product(out, a, b, dtype)


def test_out_aliasing_an_input_is_an_error(dtype):
    a = np.ones((8, 8), dtype)
    b = np.ones((8, 8), dtype)
    bias = np.ones(8, dtype)
    for out in (a, b, a[::-1]):
        before = out.copy()
        with pytest.raises(ValueError, match="overlap"):
            trainkern.linear(a, b, bias, out=out)
        np.testing.assert_array_equal(out, before)
    store = np.ones(4 + 64, dtype)  # a bias that shares memory with out
    with pytest.raises(ValueError, match="overlap"):
        trainkern.linear(a, b, store[:8], out=store[4:].reshape(8, 8))
    np.testing.assert_array_equal(store, np.ones(4 + 64, dtype))
    with pytest.raises(ValueError, match="overlap"):
        trainkern.matmul(a, b, out=a)


def test_bad_out_writes_nothing(dtype):
    a = np.ones((4, 5), dtype)
    b = np.ones((5, 6), dtype)
    cases = [
        (np.zeros((4, 7), dtype), ValueError, "shape"),
        (np.zeros((4, 6), np.float32 if dtype == np.float64 else np.float64), TypeError, "dtype"),
        (np.zeros((6, 4), dtype).T, ValueError, "contiguous rows"),
        (np.zeros((4, 6), dtype)[None], ValueError, "2-D"),
    ]
    for out, exc, msg in cases:
        before = out.copy()
        with pytest.raises(exc, match=msg):
            trainkern.linear(a, b, out=out)
        np.testing.assert_array_equal(out, before)
    ro = np.zeros((4, 6), dtype)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        trainkern.matmul(a, b, out=ro)


# -- bad input ------------------------------------------------------------------------------


def test_bad_inputs_raise(dtype):
    a = np.ones((4, 5), dtype)
    b = np.ones((5, 6), dtype)
    other = np.float32 if dtype == np.float64 else np.float64
    with pytest.raises(TypeError, match="dtype"):
        trainkern.matmul(a, b.astype(other))
    with pytest.raises(TypeError, match="float32 or float64"):
        trainkern.matmul(a.astype(np.int32), b.astype(np.int32))
    with pytest.raises(ValueError, match="inner sizes"):
        trainkern.matmul(a, np.ones((4, 6), dtype))
    with pytest.raises(ValueError, match="2-D"):
        trainkern.matmul(np.ones(5, dtype), b)
    with pytest.raises(ValueError, match="bias"):
        trainkern.linear(a, b, np.ones(5, dtype))
    with pytest.raises(TypeError, match="bias"):
        trainkern.linear(a, b, np.ones(6, other))
    with pytest.raises(ValueError, match="activation"):
        trainkern.linear(a, b, activation="softplus")
    with pytest.raises(TypeError, match="activation"):
        trainkern.linear(a, b, activation=1)
    with pytest.raises(TypeError, match="must be an array"):
        trainkern.matmul(None, b)


# -- linear_backward -------------------------------------------------------------------------


def backward_g(gy, act, src, from_pre):
    """g = grad_y * act'(.) in float64 from the same operands."""
    gy64 = f64(gy)
    if act is None:
        return gy64
    s = f64(src)
    if act in INVERTIBLE:
        y = act64(act, s) if from_pre else s
        # relu' from y: 0 where y <= 0, as from x
        backward = {"relu": ref.relu_backward, "sigmoid": ref.sigmoid_backward,
                    "tanh": ref.tanh_backward}[act]
        return backward(gy64, y)
    if act == "silu":
        return ref.silu_backward(gy64, s)
    return ref.gelu_backward(gy64, s, approximate="tanh" if act == "gelu_tanh" else "none")


def check_backward(res, gy, x, w, act, src, from_pre, dtype, need_grad_x=True):
    grad_x, grad_w, grad_b = res
    g = backward_g(gy, act, src, from_pre)
    rtol_a, _ = tolerance("linear_act", dtype)
    rtol, atol = tolerance("gemm", dtype)
    m, n = g.shape

    def close(actual, exact, scale, red, what):
        bound = (rtol * math.sqrt(max(red, 1)) + rtol_a) * scale + atol
        err = np.abs(f64(actual) - exact)
        assert actual.shape == exact.shape and (err <= bound).all(), (what, np.max(err - bound))

    if need_grad_x:
        close(grad_x, g @ f64(w).T, np.abs(g) @ np.abs(f64(w)).T, n, "grad_x")
    else:
        assert grad_x is None
    close(grad_w, f64(x).T @ g, np.abs(f64(x)).T @ np.abs(g), m, "grad_weight")
    close(grad_b, g.sum(0), np.abs(g).sum(0), m, "grad_bias")


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("m,k,n", [(1, 9, 17), (30, 7, 65), (130, 70, 33)])
def test_linear_backward(isa, dtype, rng, act, m, k, n):
    x, w, bias = operands(rng, m, k, n, dtype)
    x *= 0.5
    y, pre = trainkern.linear(x, w, bias, activation=act, return_preact=True)
    gy = rng.standard_normal((m, n)).astype(dtype)
    res = trainkern.linear_backward(gy, x, w, activation=act, preact=pre)
    check_backward(res, gy, x, w, act, pre, True, dtype)
    if act in INVERTIBLE:
        res = trainkern.linear_backward(gy, x, w, activation=act, y=y)
        check_backward(res, gy, x, w, act, y, False, dtype)
    res = trainkern.linear_backward(gy, x, w, activation=act, preact=pre, need_grad_x=False)
    check_backward(res, gy, x, w, act, pre, True, dtype, need_grad_x=False)


@pytest.mark.parametrize("act", [None, "silu"])
@pytest.mark.parametrize("lx,lw,lg", [("F", "F", "C"), ("S", "C", "F"), ("C", "S", "S")])
def test_linear_backward_layouts(isa, dtype, rng, lx, lw, lg, act):
    # Without an activation grad_y is read in place, in its own layout, by both products
    # (and its column sums are taken while it is packed).
    x, w, _ = operands(rng, 70, 40, 90, dtype)
    gy = rng.standard_normal((70, 90)).astype(dtype)
    pre = rng.standard_normal((70, 90)).astype(dtype)
    res = trainkern.linear_backward(layout(gy, lg), layout(x, lx), layout(w, lw),
                                    activation=act, preact=layout(pre, lg))
    check_backward(res, gy, x, w, act, pre, True, dtype)


@pytest.mark.parametrize("m,k,n", [(0, 5, 7), (6, 0, 7), (6, 5, 0), (40, 1, 300)])
def test_linear_backward_edges(isa, dtype, rng, m, k, n):
    x, w, _ = operands(rng, m, k, n, dtype)
    gy = rng.standard_normal((m, n)).astype(dtype)
    y = rng.random((m, n)).astype(dtype)
    res = trainkern.linear_backward(gy, x, w, activation="sigmoid", y=y)
    check_backward(res, gy, x, w, "sigmoid", y, False, dtype)


def test_linear_backward_subnormal_g_meets_infinite_x(isa):
    # grad_y * (y(1 - y)) is the smallest subnormal (-0.56 of it, rounded up), where
    # (grad_y * y)(1 - y) would round to -0: against x = inf that is -inf, not NaN.
    x, gy = np.zeros((2, 70)), np.zeros((2, 70))
    y = np.full((2, 70), 0.5)
    x[0, 62], gy[0, 65], y[0, 65] = np.inf, 5e-324, -0.4
    _, grad_w, _ = trainkern.linear_backward(gy, x, np.ones((70, 70)), activation="sigmoid", y=y)
    with np.errstate(invalid="ignore"):  # inf * 0 elsewhere in row 62
        _, expected, _ = ref.linear_backward(gy, x, np.ones((70, 70)), activation="sigmoid", y=y)
    assert grad_w[62, 65] == -np.inf
    np.testing.assert_array_equal(grad_w, expected)


def test_linear_backward_deterministic(dtype, rng, threads):
    x, w, _ = operands(rng, 300, 150, 260, dtype)
    gy = rng.standard_normal((300, 260)).astype(dtype)
    pre = rng.standard_normal((300, 260)).astype(dtype)
    out = []
    for t in (1, 2):
        trainkern.set_num_threads(t)
        out.append(trainkern.linear_backward(gy, x, w, activation="gelu", preact=pre))
    for r1, r2 in zip(*out):
        np.testing.assert_array_equal(r1, r2)


def test_linear_backward_needs_preact(dtype):
    gy = np.ones((3, 4), dtype)
    x = np.ones((3, 2), dtype)
    w = np.ones((2, 4), dtype)
    for act in ("gelu", "gelu_tanh", "silu"):
        with pytest.raises(ValueError, match="preact"):
            trainkern.linear_backward(gy, x, w, activation=act, y=gy)
        with pytest.raises(ValueError, match="preact"):
            ref.linear_backward(gy, x, w, activation=act, y=gy)
    for act in INVERTIBLE:
        with pytest.raises(ValueError, match="y or preact"):
            trainkern.linear_backward(gy, x, w, activation=act)
    with pytest.raises(ValueError, match="shape"):
        trainkern.linear_backward(gy, x, w, activation="relu", y=np.ones((3, 5), dtype))
    with pytest.raises(ValueError, match="grad_y"):
        trainkern.linear_backward(np.ones((3, 5), dtype), x, w)
    with pytest.raises(TypeError, match="dtype"):
        trainkern.linear_backward(gy.astype(np.float16), x, w)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_linear_backward_matches_torch(isa, dtype, rng, act):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    fns = {None: lambda z: z, "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
           "gelu": F.gelu, "gelu_tanh": lambda z: F.gelu(z, approximate="tanh"), "silu": F.silu}
    m, k, n = 33, 70, 65
    x, w, bias = operands(rng, m, k, n, dtype)
    x *= 0.5
    gy = rng.standard_normal((m, n)).astype(dtype)
    # torch's layer: weight (out, in); ours sees it through .T
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(np.ascontiguousarray(w.T), requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    yt = fns[act](F.linear(xt, wt, bt))
    yt.backward(torch.from_numpy(gy))
    y, pre = trainkern.linear(x, wt.detach().T, bias, activation=act, return_preact=True)
    gx, gw, gb = trainkern.linear_backward(gy, x, wt.detach().T, activation=act, preact=pre)
    rtol, atol = tolerance("linear_torch", dtype)
    rtol_a, _ = tolerance("linear_act", dtype)
    scale_y = np.abs(f64(x)) @ np.abs(f64(w)) + np.abs(f64(bias))
    for ours, theirs, scale, red in [
        (y, yt.detach().numpy(), scale_y, k),
        (gx, xt.grad.numpy(), np.abs(f64(gy)) @ np.abs(f64(w)).T, n),
        (gw, wt.grad.numpy().T, np.abs(f64(x)).T @ np.abs(f64(gy)), m),
        (gb, bt.grad.numpy(), np.abs(f64(gy)).sum(0), m),
    ]:
        bound = (rtol * math.sqrt(red) + 2 * rtol_a) * scale + atol
        assert (np.abs(f64(ours) - f64(theirs)) <= bound).all(), act
