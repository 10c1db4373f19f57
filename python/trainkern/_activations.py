"""Elementwise activations and their gradients, one pass over memory each.

Forward: ``y = f(x)``; ``out=`` (C-contiguous, writeable, same dtype and shape) receives the
result and may be ``x`` itself (in place); otherwise a new NumPy array is returned. Inputs of
any layout are accepted (a non-C-contiguous input is read through a contiguous copy). float32
and float64; float32 results are within a few ULP of the float64 values (see
tests/tolerances.py), NaN propagates and +-inf give the limits.

Backward: ``grad_x = grad_y * f'(v)`` with ``v`` the forward input ``x``, except sigmoid and
tanh, which take the forward output ``y`` (their derivative is cheapest from it). ``out=`` may
be ``grad_y`` or ``v``. Semantics and values of torch's autograd for the same functions.
"""

from __future__ import annotations

from . import _core

# Codes of tk::Activation (cpp/include/trainkern/kernels.h).
_RELU, _LEAKY_RELU, _SIGMOID, _TANH, _GELU_ERF, _GELU_TANH, _SILU = range(7)


def _gelu_code(approximate):
    if approximate == "none":
        return _GELU_ERF
    if approximate == "tanh":
        return _GELU_TANH
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def relu(x, *, out=None):
    """max(x, 0); NaN stays NaN."""
    return _core.activation(_RELU, x, out, None)


def leaky_relu(x, negative_slope=0.01, *, out=None):
    """x where x > 0, else negative_slope * x."""
    return _core.activation(_LEAKY_RELU, x, out, negative_slope)


def sigmoid(x, *, out=None):
    """1 / (1 + exp(-x)), without overflow for any x."""
    return _core.activation(_SIGMOID, x, out, None)


def tanh(x, *, out=None):
    """Hyperbolic tangent."""
    return _core.activation(_TANH, x, out, None)


def gelu(x, approximate="none", *, out=None):
    """x * Phi(x) (``approximate="none"``) or x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))
    (``approximate="tanh"``, torch's tanh form), as torch.nn.functional.gelu."""
    return _core.activation(_gelu_code(approximate), x, out, None)


def silu(x, *, out=None):
    """x * sigmoid(x)."""
    return _core.activation(_SILU, x, out, None)


def relu_backward(grad_y, x, *, out=None):
    """grad_y where x > 0 (or x is NaN), else 0."""
    return _core.activation_backward(_RELU, grad_y, x, out, None)


def leaky_relu_backward(grad_y, x, negative_slope=0.01, *, out=None):
    """grad_y where x > 0, else negative_slope * grad_y."""
    return _core.activation_backward(_LEAKY_RELU, grad_y, x, out, negative_slope)


def sigmoid_backward(grad_y, y, *, out=None):
    """grad_y * y * (1 - y), from the forward output y."""
    return _core.activation_backward(_SIGMOID, grad_y, y, out, None)


def tanh_backward(grad_y, y, *, out=None):
    """grad_y * (1 - y^2), from the forward output y."""
    return _core.activation_backward(_TANH, grad_y, y, out, None)


def gelu_backward(grad_y, x, approximate="none", *, out=None):
    """grad_y * gelu'(x) for either form (see gelu)."""
    code = _gelu_code(approximate)
    return _core.activation_backward(code, grad_y, x, out, None)


def silu_backward(grad_y, x, *, out=None):
    """grad_y * sigmoid(x) * (1 + x (1 - sigmoid(x)))."""
    return _core.activation_backward(_SILU, grad_y, x, out, None)
