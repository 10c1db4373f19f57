"""Losses with their gradient from the same fused pass.

Both return ``(loss, grad)``: ``loss`` is a NumPy scalar of the input's dtype for
``reduction="mean"`` or ``"sum"``, an array for ``"none"``; ``grad`` is the gradient of the
returned loss with respect to the first argument (for ``"none"``: of ``loss.sum()``), or
``None`` with ``compute_grad=False``. ``out=`` receives the gradient (C-contiguous,
writeable, same dtype and shape) and may be the first argument itself, to overwrite the
logits or predictions in place. Sums are taken in float64 in a fixed order, so results do not
depend on the thread count.
"""

from __future__ import annotations

from . import _core


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
    """Softmax cross-entropy of ``logits`` (N, C), float32 or float64.

    Semantics and values of ``torch.nn.functional.cross_entropy``: ``labels`` are class
    indices (N,) of any integer dtype, or probabilities (N, C) of the logits' dtype.
    ``label_smoothing`` mixes the target with the uniform distribution over C classes. With
    class indices, rows whose label equals ``ignore_index`` add 0 to the loss and get a zero
    gradient, and ``"mean"`` divides by the number of other rows (NaN when there are none);
    with probabilities, ``"mean"`` divides by N. A label outside [0, C) that is not
    ``ignore_index`` raises ValueError naming the first such row, before anything is
    written. Stable for logits of any finite magnitude (e.g. +-1e30), and without
    cancellation where the target class has probability ~1.
    """
    return _core.softmax_cross_entropy(
        logits, labels, reduction, label_smoothing, ignore_index, compute_grad, out
    )


def mse_loss(pred, target, *, reduction="mean", compute_grad=True, out=None):
    """Mean squared error ``(pred - target)^2`` reduced by ``reduction``, as
    ``torch.nn.functional.mse_loss``; the gradient is ``2 (pred - target)`` (divided by the
    element count for ``"mean"``)."""
    return _core.mse_loss(pred, target, reduction, compute_grad, out)
