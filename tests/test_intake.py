"""Array intake and validation: zero-copy for every accepted kind, clear errors otherwise,
and nothing written when a call is refused."""

import array

import numpy as np
import pytest

import trainkern
from trainkern import reference as ref
from producers import DLPackOnly


def _adam_arrays(n=10, dtype=np.float32):
    rng = np.random.default_rng(1)
    return [rng.standard_normal(n).astype(dtype) for _ in range(3)] + [np.ones(n, dtype)]


def _expected_after_one_step(arrays):
    b = [x.copy() for x in arrays]
    ref.adam_step(*b, step=1)
    return b


def test_buffer_protocol_is_updated_in_place():
    p = array.array("f", [1.0, 2.0, 3.0])
    g = array.array("f", [0.5, -0.5, 1.0])
    m = array.array("f", [0.0] * 3)
    v = array.array("f", [0.0] * 3)
    expected = _expected_after_one_step([np.array(x, np.float32) for x in (p, g, m, v)])
    trainkern.adam_step(p, g, m, v, step=1)
    np.testing.assert_array_equal(np.frombuffer(p, np.float32), expected[0])
    np.testing.assert_array_equal(np.frombuffer(v, np.float32), expected[3])


def test_dlpack_producer_is_updated_in_place():
    arrays = _adam_arrays()
    expected = _expected_after_one_step(arrays)
    trainkern.adam_step(*[DLPackOnly(a) for a in arrays], step=1)
    for a, e in zip(arrays, expected):
        np.testing.assert_array_equal(a, e)


def test_torch_tensors_are_updated_in_place():
    torch = pytest.importorskip("torch")
    arrays = _adam_arrays()
    expected = _expected_after_one_step(arrays)
    tensors = [torch.from_numpy(a.copy()) for a in arrays]
    tensors[0].requires_grad_(True)
    ptr = tensors[0].data_ptr()
    trainkern.adam_step(*tensors, step=1)
    assert tensors[0].data_ptr() == ptr
    for t, e in zip(tensors, expected):
        np.testing.assert_array_equal(t.detach().numpy(), e)


def test_torch_bfloat16_is_refused_by_name():
    torch = pytest.importorskip("torch")
    p = torch.zeros(4, dtype=torch.bfloat16)
    a = _adam_arrays(4)
    with pytest.raises(TypeError, match="adam_step: param has dtype torch.bfloat16"):
        trainkern.adam_step(p, *a[1:], step=1)


# Each case: (description, function producing (args, kwargs), exception, message).
def _bad_adam_cases():
    def base(**over):
        p, g, m, v = _adam_arrays()
        kw = dict(step=1)
        kw.update(over)
        return [p, g, m, v], kw

    def with_array(i, a, **over):
        args, kw = base(**over)
        args[i] = a
        return args, kw

    ro = np.zeros(10, np.float32)
    ro.flags.writeable = False
    shared = np.zeros(20, np.float32)
    big = np.zeros(20, np.float32)
    return [
        ("big-endian", lambda: with_array(0, np.zeros(10, ">f4")), TypeError,
         "param is not in native byte order"),
        ("int param", lambda: with_array(0, np.zeros(10, np.int32)), TypeError,
         "param must be float32 or float64, got int32"),
        ("mixed dtype", lambda: with_array(1, np.zeros(10)), TypeError,
         "grad has dtype float64 but param has dtype float32"),
        ("wrong shape", lambda: with_array(2, np.zeros(11, np.float32)), ValueError,
         r"exp_avg has shape \(11,\) but param has shape \(10,\)"),
        ("2d vs 1d", lambda: with_array(3, np.zeros((2, 5), np.float32)), ValueError,
         r"exp_avg_sq has shape \(2, 5\)"),
        ("strided", lambda: with_array(0, big[::2]), ValueError, "param must be C-contiguous"),
        ("read-only", lambda: with_array(2, ro), ValueError, "exp_avg is read-only"),
        ("overlap", lambda: (lambda a, kw: (a[:2] + [shared[:10], shared[5:15]], kw))(*base()),
         ValueError, "exp_avg and exp_avg_sq overlap in memory"),
        ("same array twice", lambda: (lambda a, kw: ([a[0], a[1], a[0], a[3]], kw))(*base()),
         ValueError, "param and exp_avg overlap"),
        ("list", lambda: with_array(1, [0.0] * 10), TypeError, "grad must be an array"),
        ("None grad", lambda: with_array(1, None), TypeError, "grad must be an array, got None"),
        ("lr<0", lambda: base(lr=-1e-3), ValueError, r"lr must be in \[0, inf\]"),
        ("lr nan", lambda: base(lr=float("nan")), ValueError, "lr must be finite"),
        ("beta1=1", lambda: base(beta1=1.0), ValueError, r"beta1 must be in \[0, 1\)"),
        ("beta2<0", lambda: base(beta2=-0.1), ValueError, "beta2 must be in"),
        ("eps<0", lambda: base(eps=-1e-8), ValueError, r"eps must be in \[0, inf\]"),
        ("wd inf", lambda: base(weight_decay=float("inf")), ValueError, "weight_decay must be finite"),
        ("step 0", lambda: base(step=0), ValueError, "step must be >= 1, got 0"),
        ("step float", lambda: base(step=1.0), TypeError, "step must be an integer"),
        ("step bool", lambda: base(step=True), TypeError, "step must be an integer"),
        ("lr str", lambda: base(lr="fast"), TypeError, "lr must be a real number"),
        ("amsgrad no buffer", lambda: base(amsgrad=True), ValueError,
         "amsgrad=True needs max_exp_avg_sq"),
        ("buffer no amsgrad", lambda: base(max_exp_avg_sq=np.zeros(10, np.float32)), ValueError,
         "max_exp_avg_sq is only used with amsgrad=True"),
        ("grad_scale 0", lambda: base(grad_scale=0.0), ValueError, "grad_scale must be in"),
        ("flag not bool", lambda: base(maximize="yes"), TypeError, "maximize must be a bool"),
    ]


@pytest.mark.parametrize("case", _bad_adam_cases(), ids=lambda c: c[0])
def test_adam_bad_input_raises_and_writes_nothing(case):
    _, make, exc, msg = case
    args, kw = make()
    before = [np.array(a, copy=True) if isinstance(a, np.ndarray) else None for a in args]
    with pytest.raises(exc, match="adam_step: " + msg):
        trainkern.adam_step(*args, **kw)
    for a, b in zip(args, before):
        if b is not None:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kw,exc,msg",
    [
        (dict(lr=-0.1), ValueError, "lr must be in"),
        (dict(lr=0.1, momentum=0.9), ValueError, "momentum != 0 needs momentum_buffer"),
        (dict(lr=0.1, nesterov=True), ValueError, "nesterov=True requires momentum > 0"),
        (dict(lr=0.1, momentum=0.9, nesterov=True, dampening=0.1), ValueError,
         "nesterov=True requires momentum > 0 and dampening == 0"),
        (dict(lr=0.1, momentum=-0.9), ValueError, "momentum must be in"),
        (dict(lr=0.1, step=0), ValueError, "step must be >= 1"),
    ],
)
def test_sgd_bad_hyperparameters(kw, exc, msg):
    p, g = _adam_arrays()[:2]
    p0 = p.copy()
    with pytest.raises(exc, match="sgd_step: " + msg):
        trainkern.sgd_step(p, g, **kw)
    np.testing.assert_array_equal(p, p0)


def test_sgd_buffer_checked_before_writing():
    p, g = _adam_arrays()[:2]
    p0 = p.copy()
    with pytest.raises(ValueError, match="sgd_step: momentum_buffer has shape"):
        trainkern.sgd_step(p, g, np.zeros(3, np.float32), lr=0.1, momentum=0.9)
    np.testing.assert_array_equal(p, p0)


def test_sgd_lr_is_required():
    p, g = _adam_arrays()[:2]
    with pytest.raises(TypeError, match="lr"):
        trainkern.sgd_step(p, g)


def test_zero_dim_and_empty_arrays(dtype):
    p, g, m, v = (np.array(x, dtype) for x in (1.0, 0.5, 0.0, 0.0))
    expected = _expected_after_one_step([a.reshape(1) for a in (p, g, m, v)])
    trainkern.adam_step(p, g, m, v, step=1)
    assert p == expected[0][0]
    e = [np.zeros((0, 3), dtype) for _ in range(4)]
    trainkern.adam_step(*e, step=1)


def test_kernels_called_from_many_threads_at_once():
    import threading

    n = 2_000_000
    arrays = [_adam_arrays(n) for _ in range(4)]
    expected = [_expected_after_one_step(a) for a in arrays]
    threads = [threading.Thread(target=trainkern.adam_step, args=a, kwargs=dict(step=1))
               for a in arrays]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, e in zip(arrays, expected):
        for x, y in zip(a, e):
            np.testing.assert_array_equal(x, y)
