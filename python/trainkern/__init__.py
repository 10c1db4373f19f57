"""trainkern: fast, verified CPU kernels for the hot loops of neural-network training.

Every public function here has a plain-NumPy twin with the same signature in
:mod:`trainkern.reference`. Arrays are taken without a copy (NumPy arrays, torch CPU
tensors, ``__dlpack__`` and buffer-protocol objects); in-place arguments are updated
where they are. Bad input raises ``TypeError``/``ValueError`` naming the argument and
leaves every array as it was.
"""

from __future__ import annotations

from . import _core
from ._activations import (
    gelu,
    gelu_backward,
    leaky_relu,
    leaky_relu_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    silu,
    silu_backward,
    tanh,
    tanh_backward,
)
from ._core import available_isas, get_num_threads, isa
from ._optim_multi import adam_step_multi, sgd_step_multi
from ._roofline import roofline

__version__ = _core.build_info()["version"]

__all__ = [
    "__version__",
    "adam_step",
    "adam_step_multi",
    "available_isas",
    "gelu",
    "gelu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "silu",
    "silu_backward",
    "tanh",
    "tanh_backward",
    "get_num_threads",
    "isa",
    "roofline",
    "set_num_threads",
    "sgd_step",
    "sgd_step_multi",
    "show_config",
]


def set_num_threads(n: int) -> None:
    """Use ``n`` OpenMP threads in trainkern's kernels (default: OMP_NUM_THREADS / all cores)."""
    _core.set_num_threads(n)


def show_config(file=None) -> None:
    """Print how trainkern was built and what it runs on: targets, CPU features, threads."""
    import platform

    import numpy as np

    b = _core.build_info()
    cpu = _core.cpu_info()
    lines = [
        f"trainkern {b['version']}",
        f"  python        {platform.python_version()} ({platform.machine()})",
        f"  numpy         {np.__version__}",
        f"  compiler      {b['compiler']} ({b['build_type']})",
        f"  openmp        {b['openmp']}",
        f"  targets built {', '.join(_core.compiled_isas())}",
        f"  runnable      {', '.join(available_isas())}",
        f"  active        {isa()}",
        f"  cpu           {cpu['brand'] or cpu['vendor'] or 'unknown'}",
        f"  cpu features  {' '.join(cpu['features'])}",
        f"  threads       {get_num_threads()}",
    ]
    print("\n".join(lines), file=file)


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
    """One Adam (or AdamW) step, in place, in one pass over memory.

    Semantics of ``torch.optim.Adam`` (``decoupled_weight_decay=True``: ``AdamW``).
    ``step`` is the 1-based step count including this step. ``param``, ``exp_avg``,
    ``exp_avg_sq`` (and ``max_exp_avg_sq`` with ``amsgrad``) are updated in place;
    ``grad`` is read only. ``grad_scale``: the gradient is divided by it on the fly
    (mixed-precision loss scaling) without touching ``grad``. float32 or float64,
    all of one dtype and shape, C-contiguous, not overlapping.
    """
    _core.adam_step(
        param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
        weight_decay, decoupled_weight_decay, amsgrad, maximize, grad_scale,
    )


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
    """One SGD step, in place (plain gradient descent when ``momentum == 0``).

    Semantics of ``torch.optim.SGD``. ``momentum_buffer`` is required when
    ``momentum != 0`` and is updated in place. torch sets the buffer to the gradient
    itself on the first step: pass ``step=1`` for that rule; otherwise the buffer
    is taken as already initialised (a zero buffer gives the same result unless
    ``dampening != 0``).
    """
    _core.sgd_step(
        param, grad, momentum_buffer, step, lr, momentum, dampening, nesterov, weight_decay,
        maximize,
    )
