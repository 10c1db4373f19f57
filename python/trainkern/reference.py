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
    "relu",
    "relu_backward",
    "sgd_step",
    "sgd_step_multi",
    "sigmoid",
    "sigmoid_backward",
    "silu",
    "silu_backward",
    "tanh",
    "tanh_backward",
]


def _fma(a, b, c):
    """a * b + c rounded once, as the kernels' FMA (and torch's add(alpha=)) computes it.

    For float32 the float64 product is exact and the sum is rounded twice (to float64,
    then to float32), which differs from one rounding only in rare ties; float64 has no
    wider type here, so it is a plain multiply-add.
    """
    a = np.asarray(a)
    if a.dtype == np.float32:
        return (a.astype(np.float64) * np.float64(b) + c).astype(np.float32)
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
    t = param.dtype.type
    g = grad if grad_scale is None else grad / t(grad_scale)
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
    value = value.astype(np.asarray(like).dtype)
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
    return np.frompyfunc(math.erfc, 1, 1)(v).astype(np.float64)


def _at_inf(x, value, pos, neg):
    return np.where(np.isposinf(x), pos, np.where(np.isneginf(x), neg, value))


def _gelu_parts(x, approximate):
    """(Phi-like factor s, x * ds/dx) of gelu = x * s."""
    if approximate == "none":
        s = 0.5 * _erfc(-x / math.sqrt(2.0))
        return s, x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    if approximate == "tanh":
        s, sm = _sigmoid_pair(_GELU_K * (x + _GELU_A * x**3))
        return s, x * _GELU_K * (1.0 + 3.0 * _GELU_A * x * x) * s * sm
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def relu(x, *, out=None):
    return _finish(np.maximum(_f64(x), 0.0), x, out)


def leaky_relu(x, negative_slope=0.01, *, out=None):
    v = _f64(x)
    return _finish(np.where(v > 0, v, v * negative_slope), x, out)


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
    return _finish(np.where(_f64(x) > 0, g, g * negative_slope), grad_y, out)


def sigmoid_backward(grad_y, y, *, out=None):
    v = _f64(y)
    return _finish(_f64(grad_y) * v * (1.0 - v), grad_y, out)


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
