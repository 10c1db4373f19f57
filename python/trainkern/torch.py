"""Drop-in ``torch.optim`` optimizers for CPU tensors, stepped by trainkern's kernels.

    opt = trainkern.torch.Adam(model.parameters(), lr=1e-3)   # as torch.optim.Adam

``Adam``, ``AdamW`` and ``SGD`` subclass :class:`torch.optim.Optimizer`: param groups with
their own hyper-parameters, ``zero_grad``, closures, hooks, LR schedulers, and a state of
the same keys as torch.optim's (``step`` as a 0-d tensor, ``exp_avg``, ``exp_avg_sq``,
``max_exp_avg_sq``, ``momentum_buffer``), so ``state_dict()`` loads into torch.optim's
optimizer of the same name and back. They work unchanged under ``torch.distributed``
(DistributedDataParallel, ``ZeroRedundancyOptimizer(optimizer_class=trainkern.torch.Adam)``).

Each step is one multi-tensor kernel call per param group and dtype, whatever the number
of tensors. Between steps the optimizer keeps NumPy views of the parameters and of its
state (no copies); it notices when they are replaced (``load_state_dict``, an assignment
to ``opt.state[p]``, ``p.data = ...``) and takes new views. New state is allocated as views
into one buffer per group, so that consecutive tensors are adjacent in memory.

Only dense, C-contiguous float32/float64 CPU tensors are accepted; sparse gradients,
complex parameters and other devices are refused with a ``TypeError``.

Importing this module needs PyTorch; ``import trainkern`` never imports it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from operator import is_

try:
    import torch
except ImportError as e:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "trainkern.torch needs PyTorch, which is not installed; install the CPU build with "
        "`pip install torch==2.13.0` (or use trainkern.optim for NumPy arrays)"
    ) from e

from ._intake import as_array
from ._optim_multi import adam_step_multi, sgd_step_multi

__all__ = ["SGD", "Adam", "AdamW"]

_data_ptr = torch.Tensor.data_ptr
_to_numpy = torch.Tensor.numpy


# -- state that reports changes --------------------------------------------------------------


class _Version:
    __slots__ = ("n",)

    def __init__(self):
        self.n = 0


def _bumping(name):
    base = getattr(dict, name)

    def method(self, *args, **kwargs):
        self._tk_version.n += 1
        return base(self, *args, **kwargs)

    method.__name__ = name
    return method


_MUTATORS = ("__setitem__", "__delitem__", "pop", "popitem", "clear", "update", "setdefault")


class _TrackedDict(dict):
    """A parameter's state dict that counts its changes. Pickles (``torch.save``,
    ``deepcopy``) as a plain dict, so saved state dicts never need trainkern to load."""

    __slots__ = ("_tk_version",)

    def __init__(self, version, *args):
        super().__init__(*args)
        self._tk_version = version

    def __reduce__(self):
        return (dict, (dict(self),))


class _TrackedState(defaultdict):
    """``optimizer.state`` that counts changes to its entries (a ``state[p] = {...}``
    from ZeroRedundancyOptimizer, for instance) and creates tracked per-parameter dicts.
    Pickles and copies as ``defaultdict(dict)``."""

    def __init__(self, items=()):
        super().__init__(None, items)
        self._tk_version = _Version()

    def __missing__(self, key):
        value = _TrackedDict(self._tk_version)
        self[key] = value
        return value

    def __reduce__(self):
        return (defaultdict, (dict,), None, None, iter(dict(self).items()))

    def __copy__(self):
        return defaultdict(dict, self)


for _cls in (_TrackedDict, _TrackedState):
    for _name in _MUTATORS:
        setattr(_cls, _name, _bumping(_name))


# -- validation ------------------------------------------------------------------------------


def _float(x):
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)


def _check_param(p, where, opt):
    if not isinstance(p, torch.Tensor):
        raise TypeError(f"{opt}: {where} is a {type(p).__name__}, not a torch.Tensor")
    if p.device.type != "cpu":
        raise TypeError(f"{opt}: {where} is on {p.device}; trainkern.torch runs on CPU tensors")
    if p.layout != torch.strided:
        raise TypeError(f"{opt}: {where} is a {p.layout} tensor; only dense tensors are accepted")
    if p.is_complex():
        raise TypeError(f"{opt}: {where} is complex ({p.dtype}); only float32/float64 are accepted")
    if p.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{opt}: {where} has dtype {p.dtype}; only float32/float64 are accepted")
    if not p.is_contiguous():
        raise ValueError(f"{opt}: {where} is not contiguous; the kernels need contiguous tensors")


def _check_flags(group, opt):
    for k in ("capturable", "differentiable"):
        if group.get(k, False):
            raise ValueError(f"{opt}: {k}=True is not supported (CUDA graphs / autograd through "
                             f"the step); use torch.optim for that")


def _real(name, v, lo, hi=math.inf, *, lo_open=False, hi_open=False):
    v = _float(v)
    ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        raise ValueError(f"Invalid {name}: {v}")
    return v


def _grad_views(grads, names, opt):
    """NumPy views of gradient tensors: one fast call each; on failure, a clear error
    naming the parameter (``names(k)`` builds the k-th name only then)."""
    try:
        return list(map(_to_numpy, grads))
    except (TypeError, RuntimeError):
        pass
    out = []
    for k, g in enumerate(grads):
        if g.layout != torch.strided:
            raise TypeError(f"{opt} does not support sparse gradients ({names(k)}.grad is "
                            f"{g.layout})")
        out.append(as_array(g, f"{names(k)}.grad", opt))
    return out


def _state_view(t, key, opt):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{opt}: state[{key!r}] of a parameter is a {type(t).__name__}, "
                        f"not a tensor")
    return as_array(t, f"state[{key!r}]", opt)


# -- per-group cache -------------------------------------------------------------------------


class _Part:
    """Parameters of one group sharing a dtype that have a gradient: one kernel call."""

    __slots__ = ("pos", "params", "views", "states", "state_views", "gviews", "steps")

    def __init__(self, pos, params):
        self.pos = pos  # positions in group["params"]
        self.params = params
        self.views = [p.detach().numpy() for p in params]
        self.states = None
        self.state_views = None  # per state key: list of NumPy views
        self.gviews = None  # NumPy views of this step's gradients
        self.steps = None  # SGD: per-tensor first-step marks for the next call only


class _Cache:
    """What a group's step reuses from the previous one, and what tells it is stale."""

    __slots__ = ("group", "params", "state", "version", "ptrs", "active", "grads", "parts")


class _Base(torch.optim.Optimizer):
    def __init__(self, params, defaults):
        _check_flags(defaults, type(self).__name__)
        self._check_hparams(defaults)
        self._tk_caches = {}
        super().__init__(params, defaults)
        self.state = _TrackedState(self.state)

    def __setstate__(self, state):
        super().__setstate__(state)
        # load_state_dict and unpickling put plain dicts here: track them again.
        if not isinstance(self.state, _TrackedState):
            tracked = _TrackedState()
            for k, v in self.state.items():
                if isinstance(v, dict):
                    v = _TrackedDict(tracked._tk_version, v)
                dict.__setitem__(tracked, k, v)
            self.state = tracked
        self._tk_caches = {}

    def state_dict(self):
        """As torch.optim's (references to the state tensors), with plain dicts per
        parameter, so that ``torch.load(..., weights_only=True)`` reads it back."""
        sd = super().state_dict()
        sd["state"] = {k: dict(v) if isinstance(v, _TrackedDict) else v
                       for k, v in sd["state"].items()}
        return sd

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        name = type(self).__name__
        gi = len(self.param_groups) - 1
        try:
            _check_flags(group, name)
            self._check_hparams(group)
            for j, p in enumerate(group["params"]):
                _check_param(p, f"param_groups[{gi}]['params'][{j}]", name)
        except (TypeError, ValueError):
            self.param_groups.pop()
            raise

    # -- stepping --------------------------------------------------------------------------

    def step(self, closure=None):
        """One step over every group (one kernel call per group and dtype); ``closure``
        re-evaluates the model and returns the loss, as in torch.optim."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for gi, group in enumerate(self.param_groups):
            self._step_group(gi, group)
        return loss

    def _step_group(self, gi, group):
        params = group["params"]
        grads = [p.grad for p in params]
        c = self._tk_caches.get(gi)
        state = self.state
        if (
            c is None
            or c.group is not group
            or c.state is not state
            or c.version != state._tk_version.n
            or len(c.params) != len(params)
            or not all(map(is_, params, c.params))
            or list(map(_data_ptr, params)) != c.ptrs
        ):
            c = self._build(gi, group, params, grads)
        elif not all(map(is_, grads, c.grads)):
            if [g is not None for g in grads] != c.active:
                c = self._build(gi, group, params, grads)
            else:
                self._take_grads(gi, c, grads)
        for part in c.parts:
            self._call(group, part)

    def _build(self, gi, group, params, grads):
        """(Re)builds the group's views; creates missing state as torch.optim does."""
        name = type(self).__name__
        if not isinstance(self.state, _TrackedState):
            self.__setstate__({})
        c = _Cache()
        c.group = group
        c.params = list(params)
        c.active = [g is not None for g in grads]
        by_dtype = {}
        for j, p in enumerate(params):
            if c.active[j]:
                _check_param(p, f"param_groups[{gi}]['params'][{j}]", name)
                by_dtype.setdefault(p.dtype, []).append(j)
        c.parts = [_Part(pos, [params[j] for j in pos]) for pos in by_dtype.values()]
        for part in c.parts:
            self._init_states(group, part)
            part.states = [self.state[p] for p in part.params]
            part.state_views = self._views(group, part)
        # Taken after state creation: the optimizer's own writes are not outside changes.
        c.state = self.state
        c.version = self.state._tk_version.n
        c.ptrs = list(map(_data_ptr, params))
        self._take_grads(gi, c, grads)
        self._tk_caches[gi] = c
        return c

    def _take_grads(self, gi, c, grads):
        name = type(self).__name__
        for part in c.parts:
            g = grads if len(part.pos) == len(grads) else [grads[j] for j in part.pos]
            part.gviews = _grad_views(
                g, lambda k, pos=part.pos: f"param_groups[{gi}]['params'][{pos[k]}]", name)
        c.grads = grads


def _flat_zeros_like(params):
    """Zero tensors shaped like ``params``, as views into one buffer with each tensor on a
    64-byte boundary: a multi-tensor step then streams through adjacent memory."""
    dtype = params[0].dtype
    per_line = 64 // params[0].element_size()
    sizes = [p.numel() for p in params]
    padded = [-(-n // per_line) * per_line for n in sizes]
    buf = torch.zeros(sum(padded) + per_line, dtype=dtype)
    start = (-buf.data_ptr() % 64) // params[0].element_size()
    out = []
    for p, n, pn in zip(params, sizes, padded):
        out.append(buf[start : start + n].view(p.shape))
        start += pn
    return out


def _scalar_dtype():
    # torch.optim's choice for the `step` tensor.
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class Adam(_Base):
    """``torch.optim.Adam`` (and AdamW with ``decoupled_weight_decay=True``) on trainkern's
    fused multi-tensor kernel. Same arguments; ``foreach`` and ``fused`` are accepted and
    kept in the groups (for state-dict round trips) but the kernel is always the fused
    multi-tensor one; ``capturable`` and ``differentiable`` are refused."""

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
        fused=None,
        decoupled_weight_decay=False,
    ):
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            for k, v in (("amsgrad", False), ("maximize", False), ("foreach", None),
                         ("capturable", False), ("differentiable", False),
                         ("decoupled_weight_decay", False), ("fused", None)):
                group.setdefault(k, v)
            for p in group["params"]:
                st = self.state.get(p)
                if st and "step" in st and not torch.is_tensor(st["step"]):
                    # Old checkpoints keep the step as a number.
                    st["step"] = torch.tensor(float(st["step"]), dtype=_scalar_dtype())

    def _check_hparams(self, group):
        _check_adam(group)

    def _init_states(self, group, part):
        fresh = [p for p in part.params if len(self.state[p]) == 0]
        keys = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group["amsgrad"] else [])
        if fresh:
            bufs = {k: _flat_zeros_like(fresh) for k in keys}
            # The step tensors too are views of one buffer: the kernel reads and bumps
            # every counter, and scattered 0-d tensors would cost a cache miss each.
            steps = torch.zeros(len(fresh), dtype=_scalar_dtype())
            for i, p in enumerate(fresh):
                st = self.state[p]
                st["step"] = steps[i]
                for k in keys:
                    st[k] = bufs[k][i]
        if group["amsgrad"]:
            missing = [p for p in part.params if "max_exp_avg_sq" not in self.state[p]]
            if missing:
                for p, t in zip(missing, _flat_zeros_like(missing)):
                    self.state[p]["max_exp_avg_sq"] = t

    def _views(self, group, part):
        name = type(self).__name__
        keys = ["step", "exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group["amsgrad"] else [])
        out = {}
        for key in keys:
            out[key] = [_state_view(st[key], key, name) for st in part.states]
        return out

    def _call(self, group, part):
        sv = part.state_views
        amsgrad = group["amsgrad"]
        if amsgrad and "max_exp_avg_sq" not in sv:
            # amsgrad switched on since the views were taken: create and view the buffers.
            self._init_states(group, part)
            sv.update({"max_exp_avg_sq": [
                st["max_exp_avg_sq"].detach().numpy() for st in part.states]})
            self._tk_caches.clear()
        beta1, beta2 = group["betas"]
        adam_step_multi(
            part.views, part.gviews, sv["exp_avg"], sv["exp_avg_sq"], step_counters=sv["step"],
            lr=_float(group["lr"]), beta1=_float(beta1), beta2=_float(beta2),
            eps=_float(group["eps"]), weight_decay=_float(group["weight_decay"]),
            decoupled_weight_decay=group["decoupled_weight_decay"], amsgrad=amsgrad,
            max_exp_avg_sqs=sv["max_exp_avg_sq"] if amsgrad else None,
            maximize=group["maximize"],
        )


def _check_adam(g):
    _real("learning rate", g["lr"], 0.0)
    # eps = 0 is allowed, as in torch.optim (0/0 = NaN where the second moment is zero).
    _real("epsilon value", g["eps"], 0.0)
    _real("beta parameter at index 0", g["betas"][0], 0.0, 1.0, hi_open=True)
    _real("beta parameter at index 1", g["betas"][1], 0.0, 1.0, hi_open=True)
    _real("weight_decay value", g["weight_decay"], 0.0)


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay (default 1e-2)."""

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        *,
        maximize=False,
        foreach=None,
        capturable=False,
        differentiable=False,
        fused=None,
    ):
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
            capturable=capturable, differentiable=differentiable, fused=fused,
            decoupled_weight_decay=True,
        )

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


class SGD(_Base):
    """``torch.optim.SGD`` (momentum, dampening, Nesterov, weight decay, maximize) on
    trainkern's multi-tensor kernel. ``foreach`` and ``fused`` are accepted and kept;
    ``differentiable`` is refused."""


    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        *,
        maximize=False,
        foreach=None,
        differentiable=False,
        fused=None,
    ):
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            for k, v in (("nesterov", False), ("maximize", False), ("foreach", None),
                         ("differentiable", False), ("fused", None)):
                group.setdefault(k, v)

    def _check_hparams(self, group):
        _check_sgd(group)

    def _init_states(self, group, part):
        part.steps = None
        if _float(group["momentum"]) == 0:
            return
        fresh = [k for k, p in enumerate(part.params)
                 if self.state[p].get("momentum_buffer") is None]
        if fresh:
            for k, t in zip(fresh, _flat_zeros_like([part.params[k] for k in fresh])):
                self.state[part.params[k]]["momentum_buffer"] = t
            # Fresh buffers take the gradient itself on their first step (torch's rule).
            marks = [2] * len(part.params)
            for k in fresh:
                marks[k] = 1
            part.steps = marks

    def _views(self, group, part):
        if _float(group["momentum"]) == 0:
            return {}
        name = type(self).__name__
        return {"momentum_buffer": [_state_view(st["momentum_buffer"], "momentum_buffer", name)
                                    for st in part.states]}

    def _call(self, group, part):
        momentum = _float(group["momentum"])
        bufs = part.state_views.get("momentum_buffer")
        if momentum != 0 and bufs is None:
            # momentum switched on since the views were taken.
            self._init_states(group, part)
            part.state_views = self._views(group, part)
            bufs = part.state_views["momentum_buffer"]
            self._tk_caches.clear()
        steps, part.steps = part.steps, None
        try:
            sgd_step_multi(
                part.views, part.gviews, bufs if momentum != 0 else None,
                lr=_float(group["lr"]), momentum=momentum, dampening=_float(group["dampening"]),
                nesterov=group["nesterov"], weight_decay=_float(group["weight_decay"]),
                maximize=group["maximize"], steps=steps,
            )
        except (TypeError, ValueError):
            # Nothing was stepped: the buffers created for this step must not survive as
            # initialised ones.
            for p, mark in zip(part.params, steps or ()):
                if mark == 1:
                    del self.state[p]["momentum_buffer"]
            self._tk_caches.clear()
            raise


def _check_sgd(g):
    _real("learning rate", g["lr"], 0.0)
    _real("momentum value", g["momentum"], 0.0)
    _real("dampening value", g["dampening"], -math.inf)
    _real("weight_decay value", g["weight_decay"], 0.0)
    if g["nesterov"] and (_float(g["momentum"]) <= 0 or _float(g["dampening"]) != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
