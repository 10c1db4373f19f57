"""The linear layer: matmul, linear (fused bias + activation) and its backward.

Operands may be any 2-D float32/float64 array-like with any strides (a transposed view such
as a torch weight ``w.T`` is read in place, never copied). Fresh outputs are C-contiguous
NumPy arrays; ``out=`` must have contiguous rows and must not overlap an input.
"""

from __future__ import annotations

from . import _core

__all__ = ["linear", "linear_backward", "matmul"]


def matmul(a, b, out=None):
    """``a @ b`` for 2-D ``a`` (M, K) and ``b`` (K, N); written into ``out`` when given."""
    return _core.matmul(a, b, out)


def linear(x, weight, bias=None, *, activation=None, out=None, return_preact=False):
    """``act(x @ weight + bias)`` with the bias and activation fused into the GEMM epilogue.

    ``x`` is (M, K), ``weight`` (K, N) (for a torch layer pass ``layer.weight.T``), ``bias``
    (N,) or None. ``activation``: None, "relu", "sigmoid", "tanh", "gelu" (erf form),
    "gelu_tanh" or "silu". With ``return_preact=True`` returns ``(y, preact)`` where
    ``preact = x @ weight + bias`` is written by the same epilogue (keep it for the backward
    of gelu, gelu_tanh and silu).
    """
    return _core.linear(x, weight, bias, activation, out, return_preact)


def linear_backward(grad_y, x, weight, *, activation=None, y=None, preact=None,
                    need_grad_x=True):
    """Gradients of :func:`linear`: returns ``(grad_x, grad_weight, grad_bias)``.

    ``g = grad_y * act'(.)`` is formed once; ``grad_x = g @ weight.T`` (None when
    ``need_grad_x=False``), ``grad_weight = x.T @ g``, ``grad_bias = g.sum(0)``, the same for
    any thread count. relu, sigmoid and tanh take the derivative from ``y`` (or ``preact``);
    gelu, gelu_tanh and silu need ``preact`` (ValueError without it).
    """
    return _core.linear_backward(grad_y, x, weight, activation, y, preact, need_grad_x)

