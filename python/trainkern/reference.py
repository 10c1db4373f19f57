"""Plain-NumPy twins of every public trainkern function: same signatures, same semantics.

They are the oracle the tests compare against and the baseline the benchmarks beat.
Written for clarity, one NumPy operation per line, in the arrays' own dtype and in the
operation order of torch.optim's single-tensor path.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["adam_step", "sgd_step"]
__all__ += ["adam_step_multi", "sgd_step_multi"]


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
