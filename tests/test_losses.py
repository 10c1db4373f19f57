"""softmax_cross_entropy and mse_loss on every target: values and gradients against
trainkern.reference and torch (autograd), label variants, numerical stability, thread-count
independence, and bad input that must raise before anything is written."""

import numpy as np
import pytest
import trainkern
from tolerances import assert_close
from trainkern import reference as ref

SHAPES = [(1, 1), (3, 7), (64, 10), (17, 100), (5, 1000), (2, 33)]
REDUCTIONS = ["mean", "sum", "none"]


def logits_and_labels(rng, dtype, n, c, ignore=True):
    x = (rng.standard_normal((n, c)) * 3).astype(dtype)
    y = rng.integers(0, c, n)
    if ignore and n > 2:
        y[1] = -100
    return x, y


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_index_labels(isa, dtype, rng, shape, reduction, smoothing):
    x, y = logits_and_labels(rng, dtype, *shape)
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    loss, grad = trainkern.softmax_cross_entropy(x, y, **kw)
    rloss, rgrad = ref.softmax_cross_entropy(x, y, **kw)
    assert grad.dtype == dtype and grad.shape == x.shape
    assert np.asarray(loss).dtype == dtype
    assert_close(loss, rloss, "ce_loss", dtype)
    assert_close(grad, rgrad, "ce_grad", dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probability_labels(isa, dtype, rng, reduction, smoothing):
    x = rng.standard_normal((20, 37)).astype(dtype)
    p = rng.random((20, 37)).astype(dtype)
    p /= p.sum(axis=1, keepdims=True)
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    loss, grad = trainkern.softmax_cross_entropy(x, p, **kw)
    rloss, rgrad = ref.softmax_cross_entropy(x, p, **kw)
    assert_close(loss, rloss, "ce_loss", dtype)
    assert_close(grad, rgrad, "ce_grad", dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_every_small_class_count(isa, dtype, rng, reduction):
    # C <= 32 runs blocks of rows across vector lanes (C = 33 is the first per-row shape); 37
    # rows leave a partial block, and ignored rows, smoothing, probability labels, in place.
    for c in range(1, 34):
        x, y = logits_and_labels(rng, dtype, 37, c)
        y[5] = -100
        p = rng.random((37, c)).astype(dtype)
        p /= p.sum(axis=1, keepdims=True)
        for labels, smoothing in ((y, 0.0), (y, 0.1), (p, 0.0), (p, 0.2)):
            kw = dict(reduction=reduction, label_smoothing=smoothing)
            loss, grad = trainkern.softmax_cross_entropy(x, labels, **kw)
            rloss, rgrad = ref.softmax_cross_entropy(x, labels, **kw)
            msg = f"C={c} labels={labels.dtype} smoothing={smoothing}"
            assert_close(loss, rloss, "ce_loss", dtype, err_msg=msg)
            op = "ce_grad_probs" if labels is p else "ce_grad"
            assert_close(grad, rgrad, op, dtype, err_msg=msg)
            inplace = x.copy()
            assert trainkern.softmax_cross_entropy(inplace, labels, out=inplace, **kw)[1] is inplace
            np.testing.assert_array_equal(inplace, grad, err_msg=msg)
            # nothing is written past the gradient (whole-vector stores end inside it)
            buf = np.full(x.size + 64, 7.0, dtype)
            out = buf[: x.size].reshape(x.shape)
            trainkern.softmax_cross_entropy(x, labels, out=out, **kw)
            np.testing.assert_array_equal(out, grad, err_msg=msg)
            assert (buf[x.size :] == 7.0).all(), msg


def test_small_class_count_special_rows(isa, dtype):
    # Rows that need the small-C path's exact target term and its limits: p_y ~ 1 (the loss and
    # the target's gradient are ~(C-1) e^-30), a target far below the maximum, NaN and inf in
    # an ignored row (gradient still 0), huge logits.
    c = 10
    x = np.zeros((5, c), dtype)
    x[0, 3] = 30
    x[1, 0] = 1e4
    x[2, :] = np.nan
    x[3, 1] = np.inf
    x[4, :] = np.finfo(dtype).max / 2
    x[4, 6] = -np.finfo(dtype).max / 2
    y = np.array([3, 7, -100, -100, 6])
    loss, grad = trainkern.softmax_cross_entropy(x, y, reduction="none")
    others = (c - 1) * np.exp(-30.0)
    np.testing.assert_allclose(loss[0], np.log1p(others), rtol=1e-6)
    np.testing.assert_allclose(grad[0, 3], -others / (1 + others), rtol=1e-6)
    np.testing.assert_allclose(loss[1], 1e4, rtol=1e-6)
    np.testing.assert_array_equal(grad[1], np.eye(c, dtype=dtype)[0] - np.eye(c, dtype=dtype)[7])
    assert (loss[2:4] == 0).all() and (grad[2:4] == 0).all()
    np.testing.assert_allclose(loss[4], np.float64(np.finfo(dtype).max), rtol=1e-6)
    np.testing.assert_allclose(grad[4], np.where(np.arange(c) == 6, -1.0, 1.0 / 9), rtol=1e-6)


@pytest.mark.parametrize(
    "label_dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64]
)
def test_any_integer_label_dtype(rng, label_dtype):
    x = rng.standard_normal((9, 5)).astype(np.float32)
    y = rng.integers(0, 5, 9)
    want = trainkern.softmax_cross_entropy(x, y)
    got = trainkern.softmax_cross_entropy(x, y.astype(label_dtype))
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
    # strided labels and logits are read through contiguous copies
    xs = np.repeat(x, 2, axis=0)[::2]
    ys = np.repeat(y, 3)[::3]
    np.testing.assert_array_equal(trainkern.softmax_cross_entropy(xs, ys)[1], want[1])


def test_compute_grad_false_and_out(rng):
    x, y = logits_and_labels(rng, np.float32, 30, 12)
    loss, grad = trainkern.softmax_cross_entropy(x, y)
    loss2, none = trainkern.softmax_cross_entropy(x, y, compute_grad=False)
    assert none is None and loss2 == loss
    out = np.empty_like(x)
    assert trainkern.softmax_cross_entropy(x, y, out=out)[1] is out
    np.testing.assert_array_equal(out, grad)
    inplace = x.copy()
    loss3, g3 = trainkern.softmax_cross_entropy(inplace, y, out=inplace)
    assert g3 is inplace and loss3 == loss
    np.testing.assert_array_equal(inplace, grad)


def test_ignored_rows(rng):
    x = rng.standard_normal((6, 4)).astype(np.float64)
    y = np.array([1, -100, 2, -100, 0, 3])
    loss, grad = trainkern.softmax_cross_entropy(x, y, label_smoothing=0.3)
    keep = y != -100
    sub_loss, sub_grad = trainkern.softmax_cross_entropy(x[keep], y[keep], label_smoothing=0.3)
    assert_close(loss, sub_loss, "ce_loss", np.float64)
    assert (grad[~keep] == 0).all()
    assert_close(grad[keep], sub_grad, "ce_grad", np.float64)
    y7 = np.where(keep, y, 7)
    custom = trainkern.softmax_cross_entropy(x, y7, ignore_index=7)
    assert_close(
        custom[0], ref.softmax_cross_entropy(x, y7, ignore_index=7)[0], "ce_loss", np.float64
    )
    # every row ignored: the mean is 0/0 (NaN, as torch), the gradient zero
    loss_all, grad_all = trainkern.softmax_cross_entropy(x, np.full(6, -100))
    assert np.isnan(loss_all) and (grad_all == 0).all()


@pytest.mark.parametrize("big", [1e30, 1.5e38])
def test_stable_for_huge_logits(isa, big):
    x = np.array([[big, -big, 0.0, 1.0], [-big, -big, big, big]], np.float32)
    y = np.array([0, 1])
    loss, grad = trainkern.softmax_cross_entropy(x, y, reduction="none")
    # row 0: target is the max by a huge margin: loss 0, gradient 0
    assert loss[0] == 0 and (grad[0] == 0).all()
    # row 1: target at -big against two at +big: loss ~ 2 big, p = (0, 0, 1/2, 1/2)
    np.testing.assert_allclose(loss[1], 2 * np.float64(big), rtol=1e-6)
    np.testing.assert_array_equal(grad[1], [0, -1, 0.5, 0.5])
    assert np.isfinite(grad).all()


def test_target_with_probability_near_one(isa, dtype):
    # p_y = 1 / (1 + (C-1) e^-30): the loss and the target's gradient are ~(C-1) e^-30, which
    # 1 - p_y or log(sum) - x_y would round to 0.
    c = 10
    x = np.zeros((1, c), dtype)
    x[0, 3] = 30
    loss, grad = trainkern.softmax_cross_entropy(x, np.array([3]))
    others = (c - 1) * np.exp(-30.0)
    np.testing.assert_allclose(loss, np.log1p(others), rtol=1e-6)
    np.testing.assert_allclose(grad[0, 3], -others / (1 + others), rtol=1e-6)
    np.testing.assert_allclose(grad[0, 0], np.exp(-30.0) / (1 + others), rtol=1e-6)


@pytest.mark.parametrize("n_cls", [97, 10])
def test_thread_count_does_not_change_results(rng, threads, n_cls):
    # 10 classes: blocks of rows across lanes, the second thread's first block where it falls
    x, y = logits_and_labels(rng, np.float32, 5001, n_cls)
    trainkern.set_num_threads(1)
    a = trainkern.softmax_cross_entropy(x, y, label_smoothing=0.1)
    m = trainkern.mse_loss(x, x[::-1].copy())
    trainkern.set_num_threads(2)
    b = trainkern.softmax_cross_entropy(x, y, label_smoothing=0.1)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    m2 = trainkern.mse_loss(x, x[::-1].copy())
    assert m[0] == m2[0]
    np.testing.assert_array_equal(m[1], m2[1])


def test_cross_entropy_bad_input_raises_and_writes_nothing(rng):
    x, y = logits_and_labels(rng, np.float32, 8, 5, ignore=False)
    out = np.full_like(x, 7.0)
    bad = y.copy()
    bad[3], bad[6] = 5, -1
    with pytest.raises(ValueError, match=r"labels\[3\] = 5 is out of range \[0, 5\)"):
        trainkern.softmax_cross_entropy(x, bad, out=out)
    with pytest.raises(TypeError, match="labels must be integer class indices"):
        trainkern.softmax_cross_entropy(x, y.astype(np.float32), out=out)
    with pytest.raises(TypeError, match="labels must be integer class indices"):
        trainkern.softmax_cross_entropy(x, y.astype(bool), out=out)
    with pytest.raises(ValueError, match="labels has shape"):
        trainkern.softmax_cross_entropy(x, y[:7], out=out)
    with pytest.raises(TypeError, match="logits must be float32 or float64"):
        trainkern.softmax_cross_entropy(x.astype(np.int32), y)
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\)"):
        trainkern.softmax_cross_entropy(x[0], y[:1])
    with pytest.raises(TypeError, match="labels has dtype float64"):
        trainkern.softmax_cross_entropy(x, np.ones((8, 5)), out=out)
    with pytest.raises(ValueError, match="labels has shape"):
        trainkern.softmax_cross_entropy(x, np.ones((8, 4), np.float32), out=out)
    with pytest.raises(ValueError, match="reduction must be"):
        trainkern.softmax_cross_entropy(x, y, reduction="avg", out=out)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        trainkern.softmax_cross_entropy(x, y, label_smoothing=1.5, out=out)
    buf = np.zeros(41, np.float32)
    buf[:40] = x.reshape(-1)
    with pytest.raises(ValueError, match="overlap"):
        trainkern.softmax_cross_entropy(buf[:40].reshape(8, 5), y, out=buf[1:].reshape(8, 5))
    np.testing.assert_array_equal(buf[:40], x.reshape(-1))
    with pytest.raises(ValueError, match="only written with compute_grad=True"):
        trainkern.softmax_cross_entropy(x, y, compute_grad=False, out=out)
    np.testing.assert_array_equal(out, 7.0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse(isa, dtype, rng, reduction):
    p = rng.standard_normal((33, 17)).astype(dtype)
    t = rng.standard_normal((33, 17)).astype(dtype)
    loss, grad = trainkern.mse_loss(p, t, reduction=reduction)
    rloss, rgrad = ref.mse_loss(p, t, reduction=reduction)
    assert_close(loss, rloss, "mse", dtype)
    assert_close(grad, rgrad, "mse", dtype)


def test_mse_large_and_in_place(rng):
    p = rng.standard_normal(100_003).astype(np.float32)
    t = rng.standard_normal(100_003).astype(np.float32)
    loss, grad = trainkern.mse_loss(p, t)
    assert_close(loss, ref.mse_loss(p, t)[0], "mse", np.float32)
    q = p.copy()
    assert trainkern.mse_loss(q, t, out=q)[1] is q
    np.testing.assert_array_equal(q, grad)
    assert trainkern.mse_loss(p, t, compute_grad=False)[1] is None


def test_mse_bad_input_raises_and_writes_nothing(rng):
    p = rng.standard_normal(10).astype(np.float32)
    out = np.full(10, 7.0, np.float32)
    with pytest.raises(ValueError, match="target has shape"):
        trainkern.mse_loss(p, p[:9], out=out)
    with pytest.raises(TypeError, match="target has dtype"):
        trainkern.mse_loss(p, p.astype(np.float64), out=out)
    with pytest.raises(TypeError, match="pred must be float32 or float64"):
        trainkern.mse_loss(np.arange(10), np.arange(10))
    np.testing.assert_array_equal(out, 7.0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
def test_cross_entropy_against_torch(isa, dtype, rng, reduction, smoothing):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, y = logits_and_labels(rng, dtype, 40, 300)
    xt = torch.tensor(x, requires_grad=True)
    lt = F.cross_entropy(xt, torch.tensor(y), reduction=reduction, label_smoothing=smoothing)
    lt.sum().backward()
    loss, grad = trainkern.softmax_cross_entropy(
        torch.tensor(x), torch.tensor(y), reduction=reduction, label_smoothing=smoothing
    )
    assert_close(loss, lt.detach().numpy(), "ce_torch", dtype)
    assert_close(grad, xt.grad.numpy(), "ce_torch", dtype)
    p = torch.softmax(torch.tensor(rng.standard_normal((40, 300)), dtype=xt.dtype), dim=1)
    xt.grad = None
    lt = F.cross_entropy(xt, p, reduction=reduction, label_smoothing=smoothing)
    lt.sum().backward()
    loss, grad = trainkern.softmax_cross_entropy(
        x, p, reduction=reduction, label_smoothing=smoothing
    )
    assert_close(loss, lt.detach().numpy(), "ce_torch", dtype)
    assert_close(grad, xt.grad.numpy(), "ce_torch", dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_against_torch(isa, dtype, rng, reduction):
    torch = pytest.importorskip("torch")
    p = rng.standard_normal((50, 7)).astype(dtype)
    t = rng.standard_normal((50, 7)).astype(dtype)
    pt = torch.tensor(p, requires_grad=True)
    lt = torch.nn.functional.mse_loss(pt, torch.tensor(t), reduction=reduction)
    lt.sum().backward()
    loss, grad = trainkern.mse_loss(p, t, reduction=reduction)
    assert_close(loss, lt.detach().numpy(), "ce_torch", dtype)
    assert_close(grad, pt.grad.numpy(), "ce_torch", dtype)
