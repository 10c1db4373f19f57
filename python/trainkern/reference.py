"""Plain-NumPy twins of every public trainkern function: same signatures, same semantics.

They are the oracle the tests compare against and the baseline the benchmarks beat.
Written for clarity, one NumPy operation per line, in the arrays' own dtype and in the
operation order of torch.optim's single-tensor path.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "adam_step",
    "adam_step_multi",
    "gelu",
    "gelu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "mse_loss",
    "linear",
    "linear_backward",
    "matmul",
    "relu",
    "relu_backward",
    "sgd_step",
    "sgd_step_multi",
    "sigmoid",
    "sigmoid_backward",
    "silu",
    "silu_backward",
    "softmax_cross_entropy",
    "tanh",
    "tanh_backward",
]


def _fma(a, b, c):
    """a * b + c rounded once, as the kernels' FMA (and torch's add(alpha=)) computes it.

    For float32 the float64 product is exact and the sum is rounded twice (to float64,
    then to float32), which differs from one rounding only in rare ties. float64 goes
    through long double where that is wider (x86-64: 64-bit significand, so the product is
    off by 2**-11 ULP at most, and where the sum cancels the result still agrees with one
    rounding); elsewhere it is a plain multiply-add.
    """
    a = np.asarray(a)
    if a.dtype == np.float32:
        return (a.astype(np.float64) * np.float64(b) + c).astype(np.float32)
    if a.dtype == np.float64 and np.finfo(np.longdouble).nmant > 52:
        wide = a.astype(np.longdouble) * np.longdouble(b) + np.asarray(c, np.longdouble)
        return wide.astype(np.float64)
    return a * b + c


def adam_step(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    *,
    step,
    lr=1e-3,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    amsgrad=False,
    max_exp_avg_sq=None,
    maximize=False,
    grad_scale=None,
) -> None:
    # Hyper-parameters are real numbers taken in double precision, as the kernels take them
    # (a NumPy float32 scalar would otherwise pull the scalar arithmetic down to float32).
    lr, beta1, beta2, eps, weight_decay = map(float, (lr, beta1, beta2, eps, weight_decay))
    t = param.dtype.type
    g = grad if grad_scale is None else grad / t(float(grad_scale))
    if maximize:
        g = -g
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= t(1.0 - lr * weight_decay)
        else:
            g = _fma(param, t(weight_decay), g)
    exp_avg += t(1.0 - beta1) * (g - exp_avg)
    exp_avg_sq *= t(beta2)
    exp_avg_sq += t(1.0 - beta2) * g * g
    # Step-dependent scalars in double precision, rounded once.
    bias_correction1 = 1.0 - beta1**step
    bias_correction2 = 1.0 - beta2**step
    step_size = t(lr / bias_correction1)
    # trainkern multiplies by 1/sqrt(bc2) where torch divides by sqrt(bc2): one division
    # fewer per element, at most an ULP apart.
    inv_bc2_sqrt = t(1.0 / math.sqrt(bias_correction2))
    v = exp_avg_sq
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    denom = np.sqrt(v) * inv_bc2_sqrt + t(eps)
    param += -step_size * (exp_avg / denom)


def sgd_step(
    param,
    grad,
    momentum_buffer=None,
    *,
    lr,
    momentum=0.0,
    dampening=0.0,
    nesterov=False,
    weight_decay=0.0,
    maximize=False,
    step=None,
) -> None:
    lr, momentum, dampening, weight_decay = map(float, (lr, momentum, dampening, weight_decay))
    t = param.dtype.type
    d = -grad if maximize else grad
    if weight_decay != 0:
        d = _fma(param, t(weight_decay), d)
    if momentum != 0:
        if step == 1:
            momentum_buffer[...] = d
        else:
            momentum_buffer[...] = _fma(d, t(1.0 - dampening), momentum_buffer * t(momentum))
        d = _fma(momentum_buffer, t(momentum), d) if nesterov else momentum_buffer
    param[...] = _fma(d, t(-lr), param)


def _per_tensor(values, n, name):
    if isinstance(values, (list, tuple)):
        if len(values) != n:
            raise ValueError(f"{name} has {len(values)} entries but there are {n} tensors")
        return list(values)
    return [values] * n


def adam_step_multi(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    *,
    steps=None,
    step_counters=None,
    lr=1e-3,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    amsgrad=False,
    max_exp_avg_sqs=None,
    maximize=False,
    grad_scale=None,
) -> None:
    n = len(params)
    if (steps is None) == (step_counters is None):
        raise TypeError("adam_step_multi: pass exactly one of steps and step_counters")
    if step_counters is not None:
        for c in step_counters:
            c[...] = c + 1
        steps = [int(c) for c in step_counters]
    steps = _per_tensor(steps, n, "steps")
    vmax = max_exp_avg_sqs if amsgrad else [None] * n
    for i in range(n):
        adam_step(
            params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], step=steps[i], lr=lr,
            beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay, amsgrad=amsgrad,
            max_exp_avg_sq=vmax[i], maximize=maximize, grad_scale=grad_scale,
        )


def sgd_step_multi(
    params,
    grads,
    momentum_buffers=None,
    *,
    lr,
    momentum=0.0,
    dampening=0.0,
    nesterov=False,
    weight_decay=0.0,
    maximize=False,
    steps=None,
) -> None:
    n = len(params)
    steps = _per_tensor(steps, n, "steps")
    bufs = momentum_buffers if momentum != 0 else [None] * n
    for i in range(n):
        sgd_step(
            params[i], grads[i], bufs[i], lr=lr, momentum=momentum, dampening=dampening,
            nesterov=nesterov, weight_decay=weight_decay, maximize=maximize, step=steps[i],
        )


# Activations: computed in float64 (the accuracy the kernels are held to) and rounded once
# to the input's dtype. Limits at +-inf are taken explicitly where the formula gives inf * 0.

_GELU_K = 2.0 * math.sqrt(2.0 / math.pi)  # u = 2z = K (x + 0.044715 x^3)
_GELU_A = 0.044715


def _finish(value, like, out):
    # an array also for 0-d inputs (NumPy arithmetic on them gives scalars), as the kernels
    value = np.asarray(value).astype(np.asarray(like).dtype)
    if out is None:
        return value
    np.copyto(np.asarray(out), value)
    return out


def _f64(x):
    return np.asarray(x).astype(np.float64)


def _sigmoid_pair(u):
    """sigmoid(u), sigmoid(-u) without overflow."""
    e = np.exp(-np.abs(u))
    pos, neg = 1.0 / (1.0 + e), e / (1.0 + e)
    return np.where(u >= 0, pos, neg), np.where(u >= 0, neg, pos)


def _erfc(v):
    # frompyfunc returns a Python float for a 0-d input
    return np.asarray(np.frompyfunc(math.erfc, 1, 1)(v), dtype=np.float64)


def _at_inf(x, value, pos, neg):
    return np.where(np.isposinf(x), pos, np.where(np.isneginf(x), neg, value))


def _gelu_parts(x, approximate):
    """(Phi-like factor s, x * ds/dx) of gelu = x * s."""
    if approximate == "none":
        s = 0.5 * _erfc(-x / math.sqrt(2.0))
        return s, x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    if approximate == "tanh":
        xc = np.clip(x, -1e4, 1e4)  # saturated long before; keeps x^3 finite
        s, sm = _sigmoid_pair(_GELU_K * (xc + _GELU_A * xc**3))
        return s, xc * _GELU_K * (1.0 + 3.0 * _GELU_A * xc * xc) * s * sm
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def relu(x, *, out=None):
    return _finish(np.maximum(_f64(x), 0.0), x, out)


def _slope(like, negative_slope):
    """The slope rounded to the array's dtype, as the kernels (and torch) use it."""
    with np.errstate(over="ignore"):
        return float(np.asarray(like).dtype.type(negative_slope))


def leaky_relu(x, negative_slope=0.01, *, out=None):
    v = _f64(x)
    s = _slope(x, negative_slope)
    with np.errstate(invalid="ignore"):
        return _finish(np.where(v > 0, v, v * s), x, out)


def sigmoid(x, *, out=None):
    return _finish(_sigmoid_pair(_f64(x))[0], x, out)


def tanh(x, *, out=None):
    return _finish(np.tanh(_f64(x)), x, out)


def gelu(x, approximate="none", *, out=None):
    v = _f64(x)
    with np.errstate(invalid="ignore", over="ignore"):
        y = v * _gelu_parts(v, approximate)[0]
    return _finish(_at_inf(v, y, np.inf, 0.0), x, out)


def silu(x, *, out=None):
    v = _f64(x)
    with np.errstate(invalid="ignore"):
        y = v * _sigmoid_pair(v)[0]
    return _finish(_at_inf(v, y, np.inf, 0.0), x, out)


def relu_backward(grad_y, x, *, out=None):
    return _finish(np.where(_f64(x) <= 0, 0.0, _f64(grad_y)), grad_y, out)


def leaky_relu_backward(grad_y, x, negative_slope=0.01, *, out=None):
    g = _f64(grad_y)
    s = _slope(grad_y, negative_slope)
    with np.errstate(invalid="ignore"):
        return _finish(np.where(_f64(x) > 0, g, g * s), grad_y, out)


def sigmoid_backward(grad_y, y, *, out=None):
    v = _f64(y)
    # y(1 - y) first, as the kernels: the three-factor product underflows to zero or not
    # depending on the order, and a zero where the kernel has a subnormal (or the reverse)
    # becomes NaN against +-inf once it meets an infinite x in linear_backward.
    return _finish(_f64(grad_y) * (v * (1.0 - v)), grad_y, out)


def tanh_backward(grad_y, y, *, out=None):
    v = _f64(y)
    return _finish(_f64(grad_y) * (1.0 - v * v), grad_y, out)


def gelu_backward(grad_y, x, approximate="none", *, out=None):
    v = _f64(x)
    with np.errstate(invalid="ignore", over="ignore"):
        s, t = _gelu_parts(v, approximate)
        d = _at_inf(v, s + t, 1.0, 0.0)
    return _finish(_f64(grad_y) * d, grad_y, out)


def silu_backward(grad_y, x, *, out=None):
    v = _f64(x)
    s, sm = _sigmoid_pair(v)
    with np.errstate(invalid="ignore"):
        d = _at_inf(v, s + v * s * sm, 1.0, 0.0)
    return _finish(_f64(grad_y) * d, grad_y, out)


# Losses: float64 throughout, rounded once to the input's dtype.


def _reduce(rows, reduction, count, dt):
    if reduction == "none":
        return np.asarray(rows).astype(dt)
    total = rows.sum()
    if reduction == "sum":
        return dt.type(total)
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return dt.type(total / count)
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def softmax_cross_entropy(
    logits,
    labels,
    *,
    reduction="mean",
    label_smoothing=0.0,
    ignore_index=-100,
    compute_grad=True,
    out=None,
):
    x0 = np.asarray(logits)
    dt = x0.dtype
    x = x0.astype(np.float64)
    n, c = x.shape
    lab = np.asarray(labels)
    eps = float(label_smoothing)
    with np.errstate(invalid="ignore", over="ignore"):
        m = x.max(axis=1, keepdims=True)
        e = np.exp(x - m)
        d = e.sum(axis=1, keepdims=True)
        logp = (x - m) - np.log(d)
        p = e / d
    if lab.ndim == 1:
        keep = lab != ignore_index
        bad = np.flatnonzero(keep & ((lab < 0) | (lab >= c)))
        if bad.size:
            raise ValueError(f"labels[{bad[0]}] = {lab[bad[0]]} is out of range [0, {c})")
        y = np.where(keep, lab, 0).astype(np.int64)
        target = np.full((n, c), eps / c)
        target[np.arange(n), y] += 1.0 - eps
        # torch's form: (1 - eps) nll + eps * mean(-logp), the smoothing term only when
        # eps > 0 (a class with logit -inf then adds nothing, where 0 * -inf would be NaN)
        rows = -logp[np.arange(n), y]
        if eps > 0:
            with np.errstate(invalid="ignore"):
                rows = (1.0 - eps) * rows - eps / c * logp.sum(axis=1)
        rows = np.where(keep, rows, 0.0)
        grad_rows = np.where(keep[:, None], p - target, 0.0)
        count = int(keep.sum())
    else:
        target = lab.astype(np.float64) * (1.0 - eps) + eps / c
        with np.errstate(invalid="ignore"):
            rows = -(target * logp).sum(axis=1)
        grad_rows = p * target.sum(axis=1, keepdims=True) - target
        count = n
    loss = _reduce(rows, reduction, count, dt)
    if not compute_grad:
        return loss, None
    if reduction != "mean":
        scale = 1.0
    else:
        scale = 1.0 / count if count else np.inf
    with np.errstate(invalid="ignore"):
        grad = np.where(grad_rows == 0, 0.0, grad_rows * scale)
    return loss, _finish(grad, x0, out)


def mse_loss(pred, target, *, reduction="mean", compute_grad=True, out=None):
    p0 = np.asarray(pred)
    diff = p0.astype(np.float64) - np.asarray(target).astype(np.float64)
    loss = _reduce(diff * diff, reduction, diff.size, p0.dtype)
    if not compute_grad:
        return loss, None
    # an empty "mean" has a NaN loss and an empty gradient
    scale = 2.0 / diff.size if reduction == "mean" and diff.size else 2.0
    return loss, _finish(diff * scale, p0, out)
# Linear layer: the product in the operands' dtype (NumPy's matmul), then the activation
# twins above.

_LINEAR_ACTS = {
    None: lambda z: z,
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "gelu": gelu,
    "gelu_tanh": lambda z: gelu(z, approximate="tanh"),
    "silu": silu,
}


def _linear_act(activation):
    try:
        return _LINEAR_ACTS[activation]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {activation!r}") from None


def matmul(a, b, out=None):
    return np.matmul(a, b, out=out)


def linear(x, weight, bias=None, *, activation=None, out=None, return_preact=False):
    act = _linear_act(activation)
    preact = np.asarray(x) @ np.asarray(weight)
    if bias is not None:
        preact = preact + np.asarray(bias)
    y = act(preact)
    if out is not None:
        np.copyto(np.asarray(out), y)
        y = out
    return (y, preact) if return_preact else y


def linear_backward(grad_y, x, weight, *, activation=None, y=None, preact=None,
                    need_grad_x=True):
    _linear_act(activation)
    grad_y = np.asarray(grad_y)
    if activation is None:
        g = grad_y
    elif activation in ("relu", "sigmoid", "tanh"):
        if y is None and preact is None:
            raise ValueError(f"activation {activation!r} needs y or preact")
        src = y if y is not None else _LINEAR_ACTS[activation](np.asarray(preact))
        if activation == "relu":
            g = relu_backward(grad_y, src)
        elif activation == "sigmoid":
            g = sigmoid_backward(grad_y, src)
        else:
            g = tanh_backward(grad_y, src)
    else:
        if preact is None:
            raise ValueError(f"activation {activation!r} is not invertible: pass preact")
        if activation == "silu":
            g = silu_backward(grad_y, preact)
        else:
            g = gelu_backward(grad_y, preact,
                              approximate="tanh" if activation == "gelu_tanh" else "none")
    grad_x = g @ np.asarray(weight).T if need_grad_x else None
    return grad_x, np.asarray(x).T @ g, g.sum(axis=0)
