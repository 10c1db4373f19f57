"""Activation kernels, forward and backward, on every target: values against
trainkern.reference and torch, out= and aliasing, layouts, sizes around the vector width,
the streaming-store path, thread-count independence, and bad input that must write nothing."""

import numpy as np
import pytest
import trainkern
from tolerances import assert_close
from trainkern import reference as ref

# name -> (forward, backward, backward takes the output y)
ACTS = {
    "relu": (trainkern.relu, trainkern.relu_backward, ref.relu, ref.relu_backward, False),
    "leaky_relu": (
        lambda x, **k: trainkern.leaky_relu(x, 0.2, **k),
        lambda g, x, **k: trainkern.leaky_relu_backward(g, x, 0.2, **k),
        lambda x, **k: ref.leaky_relu(x, 0.2, **k),
        lambda g, x, **k: ref.leaky_relu_backward(g, x, 0.2, **k),
        False,
    ),
    "sigmoid": (
        trainkern.sigmoid,
        trainkern.sigmoid_backward,
        ref.sigmoid,
        ref.sigmoid_backward,
        True,
    ),
    "tanh": (trainkern.tanh, trainkern.tanh_backward, ref.tanh, ref.tanh_backward, True),
    "gelu": (trainkern.gelu, trainkern.gelu_backward, ref.gelu, ref.gelu_backward, False),
    "gelu_tanh": (
        lambda x, **k: trainkern.gelu(x, "tanh", **k),
        lambda g, x, **k: trainkern.gelu_backward(g, x, "tanh", **k),
        lambda x, **k: ref.gelu(x, "tanh", **k),
        lambda g, x, **k: ref.gelu_backward(g, x, "tanh", **k),
        False,
    ),
    "silu": (trainkern.silu, trainkern.silu_backward, ref.silu, ref.silu_backward, False),
}
NAMES = list(ACTS)


def inputs(rng, dtype, n=1000):
    x = (rng.standard_normal(n) * 4).astype(dtype)
    x[:8] = [0.0, -0.0, 1e-30, -1e-30, 30.0, -30.0, 120.0, -120.0]
    return x


@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_reference(isa, dtype, rng, name):
    fwd, _, rfwd, _, _ = ACTS[name]
    x = inputs(rng, dtype)
    y = fwd(x)
    assert y.dtype == dtype and y.shape == x.shape
    assert_close(y, rfwd(x), "act", dtype, err_msg=name)


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_reference(isa, dtype, rng, name):
    fwd, bwd, rfwd, rbwd, from_y = ACTS[name]
    x = inputs(rng, dtype)
    g = rng.standard_normal(x.size).astype(dtype)
    v = rfwd(x) if from_y else x
    assert_close(bwd(g, v), rbwd(g, v), "act_grad", dtype, err_msg=name)


@pytest.mark.parametrize("name", NAMES)
def test_special_values(isa, dtype, name):
    fwd, bwd, rfwd, rbwd, from_y = ACTS[name]
    x = np.array([np.nan, np.inf, -np.inf, 0.0, np.finfo(dtype).max, -np.finfo(dtype).max], dtype)
    y = fwd(x)
    assert np.isnan(y[0]), "NaN must propagate"
    np.testing.assert_array_equal(y[1:], rfwd(x)[1:])
    g = np.ones_like(x)
    v = rfwd(x) if from_y else x
    np.testing.assert_array_equal(bwd(g, v)[1:], rbwd(g, v)[1:])


def test_relu_nan_and_signed_zero():
    x = np.array([np.nan, -0.0, -1.0, 2.0], np.float32)
    y = trainkern.relu(x)
    assert np.isnan(y[0]) and y[1] == 0 and y[2] == 0 and y[3] == 2
    # torch's rule: the gradient passes where x is NaN, not where x <= 0
    np.testing.assert_array_equal(trainkern.relu_backward(np.ones(4, np.float32), x), [1, 0, 0, 1])


@pytest.mark.parametrize("n", [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100])
def test_sizes_around_the_vector_width(isa, rng, n):
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    for name in ("gelu", "silu", "relu"):
        fwd, bwd, rfwd, rbwd, _ = ACTS[name]
        assert_close(fwd(x), rfwd(x), "act", np.float32, err_msg=f"{name} n={n}")
        assert_close(bwd(g, x), rbwd(g, x), "act_grad", np.float32, err_msg=f"{name} n={n}")


@pytest.mark.parametrize("name", NAMES)
def test_out_in_place_and_given(isa, rng, name):
    fwd, bwd, rfwd, _, from_y = ACTS[name]
    x = inputs(rng, np.float32, 257).reshape(257, 1)
    expected = fwd(x)
    y = x.copy()
    assert fwd(y, out=y) is y
    np.testing.assert_array_equal(y, expected)
    out = np.empty_like(x)
    assert fwd(x, out=out) is out
    np.testing.assert_array_equal(out, expected)
    g = rng.standard_normal(x.shape).astype(np.float32)
    v = rfwd(x) if from_y else x
    want = bwd(g, v)
    g2 = g.copy()
    assert bwd(g2, v, out=g2) is g2
    np.testing.assert_array_equal(g2, want)
    v2 = v.copy()
    assert bwd(g, v2, out=v2) is v2
    np.testing.assert_array_equal(v2, want)


def test_any_layout_input(isa, rng):
    base = rng.standard_normal((40, 30)).astype(np.float64)
    for x in (base.T, base[::2, 1::3], base[:, ::-1]):
        np.testing.assert_array_equal(trainkern.gelu(x), trainkern.gelu(np.ascontiguousarray(x)))
        g = np.ones_like(x)
        np.testing.assert_array_equal(
            trainkern.silu_backward(g, x), trainkern.silu_backward(g, np.ascontiguousarray(x))
        )


def test_streaming_path_and_misaligned_output(rng):
    # Above 16 MiB out of place the kernel streams; offsets by one element exercise the
    # alignment peel at both ends.
    n = (17 << 20) // 4 + 5
    buf = np.empty(n + 1, np.float32)
    x = rng.standard_normal(n).astype(np.float32) * 3
    out = buf[1:]
    trainkern.sigmoid(x, out=out)
    assert_close(out, ref.sigmoid(x), "act", np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    gx = trainkern.relu_backward(g, x, out=buf[:-1])
    np.testing.assert_array_equal(gx, np.where(x > 0, g, 0))
    # same values as the in-cache path, chunk by chunk
    y = trainkern.gelu(x)
    np.testing.assert_array_equal(y[:100_001], trainkern.gelu(x[:100_001]))
    np.testing.assert_array_equal(y[-77:], trainkern.gelu(x[-77:]))


@pytest.mark.parametrize("name", ["gelu", "silu", "tanh"])
def test_thread_count_does_not_change_results(rng, threads, name):
    fwd, bwd, *_ = ACTS[name]
    # the 2-thread split (at a multiple of 64) falls inside a GELU table block of 512
    x = rng.standard_normal(300_193).astype(np.float32)
    trainkern.set_num_threads(1)
    a, ga = fwd(x), bwd(x, x)
    trainkern.set_num_threads(2)
    np.testing.assert_array_equal(fwd(x), a)
    np.testing.assert_array_equal(bwd(x, x), ga)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_form_depends_on_the_inputs_alone(rng, threads, approximate):
    # The GELUs take table blocks (AVX-512) by the inputs of fixed blocks of the array: the
    # same values whatever the thread count, the output's alignment (streaming peel) or a
    # slice that starts on a block.
    n = (17 << 20) // 4 + 5
    x = rng.standard_normal(n).astype(np.float32)
    x[rng.integers(0, n, 500)] = 6.0  # some blocks take the general form
    g = rng.standard_normal(n).astype(np.float32)
    trainkern.set_num_threads(1)
    y, gx = trainkern.gelu(x, approximate), trainkern.gelu_backward(g, x, approximate)
    trainkern.set_num_threads(2)
    np.testing.assert_array_equal(trainkern.gelu(x, approximate), y)
    np.testing.assert_array_equal(trainkern.gelu_backward(g, x, approximate), gx)
    buf = np.empty(n + 1, np.float32)
    np.testing.assert_array_equal(trainkern.gelu(x, approximate, out=buf[1:]), y)
    np.testing.assert_array_equal(trainkern.gelu_backward(g, x, approximate, out=buf[:-1]), gx)
    np.testing.assert_array_equal(trainkern.gelu(x[512 * 301 :], approximate), y[512 * 301 :])


def test_bad_input_raises_and_writes_nothing(rng):
    x = rng.standard_normal(64).astype(np.float32)
    out = np.full(64, 7.0, np.float32)
    with pytest.raises(TypeError, match="gelu: x must be float32 or float64"):
        trainkern.gelu(np.arange(5))
    with pytest.raises(TypeError, match="out has dtype float64"):
        trainkern.relu(x, out=np.zeros(64))
    with pytest.raises(ValueError, match="out has shape"):
        trainkern.relu(x, out=np.zeros(63, np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        trainkern.tanh(x, out=np.zeros(128, np.float32)[::2])
    ro = np.zeros(64, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        trainkern.tanh(x, out=ro)
    big = rng.standard_normal(100).astype(np.float32)
    before = big.copy()
    with pytest.raises(ValueError, match="overlap"):
        trainkern.sigmoid(big[:64], out=big[10:74])
    np.testing.assert_array_equal(big, before)
    with pytest.raises(ValueError, match="approximate"):
        trainkern.gelu(x, "fast")
    with pytest.raises(ValueError, match="negative_slope must be finite"):
        trainkern.leaky_relu(x, float("nan"), out=out)
    with pytest.raises(ValueError, match="y has shape"):
        trainkern.sigmoid_backward(x, x[:10], out=out)
    with pytest.raises(TypeError, match="x has dtype float64"):
        trainkern.gelu_backward(x, x.astype(np.float64), out=out)
    np.testing.assert_array_equal(out, 7.0)


@pytest.mark.parametrize("name", NAMES)
def test_against_torch_autograd(isa, dtype, rng, name):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    fns = {
        "relu": F.relu,
        "leaky_relu": lambda t: F.leaky_relu(t, 0.2),
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "gelu": F.gelu,
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
        "silu": F.silu,
    }
    fwd, bwd, _, _, from_y = ACTS[name]
    x = (rng.standard_normal(2000) * 4).astype(dtype)
    g = rng.standard_normal(2000).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = fns[name](xt)
    yt.backward(torch.tensor(g))
    y = fwd(torch.tensor(x))  # torch tensors are read without a copy
    assert_close(y, yt.detach().numpy(), "act_torch", dtype, err_msg=name)
    gx = bwd(g, y if from_y else x)
    assert_close(gx, xt.grad.numpy(), "act_torch", dtype, err_msg=name)


def test_torch_tensors_in_place():
    torch = pytest.importorskip("torch")
    t = torch.linspace(-3, 3, 101)
    want = torch.nn.functional.silu(t)
    assert trainkern.silu(t, out=t) is t
    torch.testing.assert_close(t, want, rtol=1e-6, atol=1e-7)
