"""Zero-copy intake of array-likes that are not already NumPy arrays.

The compiled bindings call :func:`as_array` for any argument that is not an
``ndarray``; it returns a view on the same memory or raises ``TypeError`` naming
the argument. It never copies: an in-place update through a copy would be lost.
"""

from __future__ import annotations

import numpy as np


def _torch_view(x, name: str, fn: str) -> np.ndarray:
    if x.device.type != "cpu":
        raise TypeError(f"{fn}: {name} is a torch tensor on {x.device}; only CPU tensors are accepted")
    if str(x.layout) != "torch.strided":
        raise TypeError(f"{fn}: {name} is a {x.layout} torch tensor; only dense tensors are accepted")
    if x.is_conj() or x.is_neg():
        raise TypeError(f"{fn}: {name} has a lazy conj/neg bit; call .resolve_conj() first")
    try:
        # detach() shares storage: the view sees and makes every change the tensor does.
        return x.detach().numpy()
    except TypeError as e:
        raise TypeError(f"{fn}: {name} has dtype {x.dtype}, which NumPy cannot view: {e}") from None


def as_array(x, name: str, fn: str = "trainkern") -> np.ndarray:
    """Return an ndarray viewing the memory of ``x`` (no copy) or raise TypeError."""
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("torch") and hasattr(x, "detach"):
        return _torch_view(x, name, fn)
    if hasattr(x, "__dlpack__"):
        try:
            return np.from_dlpack(x)
        except (BufferError, TypeError, RuntimeError) as e:
            raise TypeError(f"{fn}: {name} could not be viewed through __dlpack__: {e}") from None
        except ValueError as e:  # e.g. a shape whose size overflows
            raise ValueError(f"{fn}: {name} could not be viewed through __dlpack__: {e}") from None
    try:
        mv = memoryview(x)
    except TypeError:
        raise TypeError(
            f"{fn}: {name} must be an array (NumPy, torch CPU tensor, __dlpack__ or buffer "
            f"protocol), got {type(x).__name__}"
        ) from None
    return np.asarray(mv)
