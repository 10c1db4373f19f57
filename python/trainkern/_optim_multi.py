"""Multi-tensor optimizer steps: every tensor of a model in one call and one parallel region.

A model of many small tensors is dominated by per-call overhead when each tensor is
stepped on its own (a Python call, a validation, a parallel region each); these take
lists and hand the whole batch to one kernel that splits the total element count evenly
over the threads.
"""

from __future__ import annotations

from . import _core


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
    """One Adam (or AdamW) step on every tensor of the lists, in place, in one call.

    Entry ``i`` of ``params``, ``grads``, ``exp_avgs``, ``exp_avg_sqs`` (and
    ``max_exp_avg_sqs`` with ``amsgrad``) is one tensor, with the contract of
    :func:`trainkern.adam_step` (same dtype and shape within an entry, C-contiguous);
    tensors may differ in shape, and all share one dtype. Lists or tuples; entries may
    be anything :func:`adam_step` accepts (NumPy arrays are fastest).

    The step count, per tensor as torch keeps it, comes in one of two forms:

    - ``steps``: an int for every tensor, or a sequence with one int per tensor: the
      1-based count including this step (``adam_step``'s ``step``);
    - ``step_counters``: one writable 0-d array per tensor (float32, float64 or int64;
      e.g. NumPy views of torch's ``state["step"]`` tensors) holding the number of steps
      taken so far; each is incremented by one in place and the new value is used.

    Every entry is validated before anything is written; errors name the entry
    (``"grads[3] has shape (4,) but params[3] has shape (5,)"``).
    """
    _core.adam_step_multi(
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, step_counters, lr,
        beta1, beta2, eps, weight_decay, decoupled_weight_decay, amsgrad, maximize,
        grad_scale,
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
    """One SGD step on every tensor of the lists, in place, in one call.

    Entry ``i`` of the lists is one tensor with the contract of :func:`trainkern.sgd_step`.
    ``momentum_buffers`` is required when ``momentum != 0``. ``steps`` (an int, or one
    int per tensor) marks the tensors whose step count is 1: their buffer is set to the
    gradient (torch's first-step rule); ``None`` takes every buffer as initialised.
    """
    _core.sgd_step_multi(
        params, grads, momentum_buffers, steps, lr, momentum, dampening, nesterov,
        weight_decay, maximize,
    )
