"""Optimizers over NumPy arrays, and a functional form for immutable arrays (JAX).

Classes (in place, like ``torch.optim``)::

    opt = trainkern.optim.Adam([w, b], lr=1e-3)   # w, b: float32/float64 arrays
    opt.step([grad_w, grad_b])                    # updates w and b where they are

Parameters are taken without a copy (NumPy arrays, torch CPU tensors, ``__dlpack__`` or
buffer-protocol objects; writable and C-contiguous). The state lives in NumPy arrays that
``opt.state[i]`` exposes without a copy (``i`` is the parameter's position over all
groups). Each step is one multi-tensor kernel call per group and dtype
(:func:`trainkern.adam_step_multi`), whatever the number of tensors.

Functional form, for arrays that cannot be updated in place (JAX)::

    state = trainkern.optim.adam_init(params)                  # any pytree of arrays
    params, state = trainkern.optim.adam_update(params, grads, state, lr=1e-3)

``adam_update`` copies the parameters and the state once into new NumPy arrays, updates
the copies with one kernel call and returns them in the structure of ``params``; the
arguments are left as they were. JAX functions accept the NumPy results directly.
"""

from __future__ import annotations

import math
import sys
from itertools import repeat
from operator import is_
from types import MappingProxyType

import numpy as np

from ._intake import as_array
from ._optim_multi import adam_step_multi, sgd_step_multi

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Optimizer",
    "adam_init",
    "adam_update",
    "sgd_init",
    "sgd_update",
]


def _real(name, value, lo, hi=math.inf, *, lo_open=False, hi_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        lo_b, hi_b = ("(" if lo_open else "["), (")" if hi_open else "]")
        raise ValueError(f"Invalid {name}: {value} (must be in {lo_b}{lo}, {hi}{hi_b})")
    return v


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _check_adam_hparams(g):
    _real("learning rate", g["lr"], 0.0)
    betas = g["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    _real("beta parameter at index 0", betas[0], 0.0, 1.0, hi_open=True)
    _real("beta parameter at index 1", betas[1], 0.0, 1.0, hi_open=True)
    # eps = 0 is allowed, as in torch.optim (0/0 = NaN where the second moment is zero).
    _real("epsilon value", g["eps"], 0.0)
    _real("weight_decay value", g["weight_decay"], 0.0)
    for k in ("amsgrad", "maximize", "decoupled_weight_decay"):
        _flag(k, g[k])


def _check_sgd_hparams(g):
    if g["lr"] is None:
        raise TypeError("SGD needs a learning rate: SGD(params, lr=...)")
    _real("learning rate", g["lr"], 0.0)
    _real("momentum value", g["momentum"], 0.0)
    _real("dampening value", g["dampening"], -math.inf)
    _real("weight_decay value", g["weight_decay"], 0.0)
    for k in ("nesterov", "maximize"):
        _flag(k, g[k])
    if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")


def flat_zeros(shapes, dtype):
    """Zero arrays of the given shapes as views into one buffer, each starting on a
    64-byte boundary. A multi-tensor step streams through tensor after tensor; when the
    state of consecutive tensors is adjacent in memory, the hardware prefetcher follows
    one stream instead of restarting at every tensor (about 1.5x faster here for 1,000-
    element tensors than separately allocated arrays)."""
    dtype = np.dtype(dtype)
    per_line = 64 // dtype.itemsize
    sizes = [math.prod(sh) for sh in shapes]
    padded = [-(-n // per_line) * per_line for n in sizes]
    buf = np.zeros(sum(padded) + per_line, dtype)
    start = (-buf.ctypes.data % 64) // dtype.itemsize
    out = []
    for sh, n, pn in zip(shapes, sizes, padded):
        out.append(buf[start : start + n].reshape(sh))
        start += pn
    return out


class _Part:
    """The parameters of one group that share a dtype: one kernel call per step. The
    argument lists of that call are kept between steps (``args``) and rebuilt only when
    the optimizer replaces a state array itself (lazy buffers, load_state_dict)."""

    __slots__ = ("index", "params", "states", "whole", "args")

    def __init__(self, index, params, states, whole=False):
        self.index = index  # positions in the flat parameter list
        self.params = params  # their NumPy views
        self.states = states  # their state dicts (owned by the optimizer)
        self.whole = whole  # covers every parameter, in order: grads pass through as given
        self.args = None

    def subset(self, keep):
        return _Part(
            [self.index[k] for k in keep], [self.params[k] for k in keep],
            [self.states[k] for k in keep],
        )


class Optimizer:
    """Base class: parameter groups over arrays, state as NumPy arrays, one kernel call
    per group and dtype per step. Subclasses define ``_check_hparams``, ``_init_state``,
    ``_prepare`` (fills missing state), ``_args`` (the state lists a step passes) and
    ``_call`` (the kernel call)."""

    _state_keys: tuple = ()

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self._state = []  # per parameter (flat order over groups): dict of arrays
        self._params = []  # the NumPy view of each parameter
        self._parts = []  # per group: list of _Part
        if isinstance(params, np.ndarray) or hasattr(params, "__dlpack__"):
            raise TypeError(
                f"{type(self).__name__}: params must be a list of arrays (or of param group "
                f"dicts), got a single {type(params).__name__}; wrap it in a list"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    # -- groups ---------------------------------------------------------------------------

    def add_param_group(self, param_group):
        """Add a group: ``{"params": [...], **hyper_parameters}`` (missing ones: defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        raw = group.get("params")
        if raw is None:
            raise ValueError("param group has no 'params'")
        raw = [raw] if isinstance(raw, np.ndarray) else list(raw)
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown hyper-parameters {sorted(unknown)}")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check_hparams(group)
        fn = type(self).__name__
        start = len(self._params)
        views = []
        for j, p in enumerate(raw):
            name = f"params[{start + j}]"
            a = as_array(p, name, fn)
            if a.dtype not in (np.float32, np.float64):
                raise TypeError(f"{fn}: {name} must be float32 or float64, got {a.dtype}")
            if not a.flags.c_contiguous:
                raise ValueError(f"{fn}: {name} must be C-contiguous")
            if not a.flags.writeable:
                raise ValueError(
                    f"{fn}: {name} is read-only; the classes update parameters in place "
                    f"(for immutable arrays such as JAX's, use trainkern.optim.adam_update)"
                )
            for k, q in enumerate(self._params + views):
                if np.shares_memory(a, q):
                    raise ValueError(f"{fn}: {name} shares memory with params[{k}]")
            views.append(a)
        group["params"] = list(range(start, start + len(views)))
        self._params.extend(views)
        self._state.extend({} for _ in views)
        by_dtype = {}
        for i, a in zip(group["params"], views):
            by_dtype.setdefault(a.dtype, []).append(i)
        parts = []
        for index in by_dtype.values():
            part = _Part(index, [self._params[i] for i in index], [self._state[i] for i in index])
            self._init_state(part, group)
            parts.append(part)
        self.param_groups.append(group)
        self._parts.append(parts)
        whole = len(self._parts) == 1 and len(self._parts[0]) == 1
        self._parts[0][0].whole = whole

    def _check_hparams(self, group):
        raise NotImplementedError

    @property
    def params(self):
        """The parameters as NumPy views, in flat order over the groups."""
        return list(self._params)

    @property
    def state(self):
        """Per parameter (flat order over the groups), a read-only mapping of its state
        arrays: update them in place (``opt.state[i]["exp_avg"][...] = x``) or through
        :meth:`load_state_dict`."""
        return [MappingProxyType(st) for st in self._state]

    def _state_changed(self):
        for parts in self._parts:
            for part in parts:
                part.args = None

    # -- stepping -------------------------------------------------------------------------

    def step(self, grads):
        """One step. ``grads``: one gradient per parameter, in the order of ``params``
        (flat over the groups); a ``None`` entry skips that parameter this step."""
        grads = list(grads)
        if len(grads) != len(self._params):
            raise ValueError(
                f"{type(self).__name__}.step: got {len(grads)} gradients for "
                f"{len(self._params)} parameters"
            )
        for group, parts in zip(self.param_groups, self._parts):
            for part in parts:
                g = grads if part.whole else [grads[i] for i in part.index]
                if any(map(is_, g, repeat(None))):
                    keep = [k for k, x in enumerate(g) if x is not None]
                    if not keep:
                        continue
                    part, g = part.subset(keep), [g[k] for k in keep]
                steps = self._prepare(group, part)
                if part.args is None:
                    part.args = self._args(group, part)
                self._call(group, part.params, g, part.args, steps)

    def zero_state(self):
        """Forget the optimizer state (moments, buffers and step counts)."""
        for group, parts in zip(self.param_groups, self._parts):
            for part in parts:
                for st in part.states:
                    st.clear()
                self._init_state(part, group)
        self._state_changed()

    # -- state dict -----------------------------------------------------------------------

    def state_dict(self):
        """A snapshot: ``{"state": {i: {...}}, "param_groups": [{..., "params": [i, ...]}]}``
        with copies of the state arrays (later steps do not change it)."""
        state = {
            i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
            for i, st in enumerate(self._state)
        }
        groups = [dict(g, params=list(g["params"])) for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a :meth:`state_dict`: hyper-parameters per group, and state values copied
        into this optimizer's own arrays (views taken earlier stay valid)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"state dict has {len(groups)} parameter groups, this optimizer "
                f"{len(self.param_groups)}"
            )
        new_groups = []
        for k, (g, mine) in enumerate(zip(groups, self.param_groups)):
            if len(g["params"]) != len(mine["params"]):
                raise ValueError(
                    f"param group {k}: state dict has {len(g['params'])} parameters, this "
                    f"optimizer {len(mine['params'])}"
                )
            ng = {key: g.get(key, mine[key]) for key in self.defaults}
            self._check_hparams(ng)
            ng["params"] = mine["params"]
            new_groups.append(ng)
        id_map = {
            old: new
            for g, mine in zip(groups, self.param_groups)
            for old, new in zip(g["params"], mine["params"])
        }
        loaded = {}
        for old, st in state_dict["state"].items():
            if old not in id_map:
                raise ValueError(f"state dict has state for unknown parameter {old!r}")
            i = id_map[old]
            p = self._params[i]
            vals = {}
            for key, v in st.items():
                if key not in self._state_keys:
                    raise ValueError(f"state of parameter {old}: unknown key {key!r}")
                if v is None:
                    vals[key] = None
                    continue
                v = np.asarray(v)
                want = () if key == "step" else p.shape
                if v.shape != want:
                    raise ValueError(
                        f"state of parameter {old}: {key} has shape {v.shape}, expected {want}"
                    )
                vals[key] = v
            loaded[i] = vals
        # Everything checked: now write.
        for mine, ng in zip(self.param_groups, new_groups):
            mine.clear()
            mine.update(ng)
        for i, vals in loaded.items():
            st = self._state[i]
            for key, v in vals.items():
                if v is None:
                    st[key] = None
                elif isinstance(st.get(key), np.ndarray):
                    np.copyto(st[key], v, casting="same_kind")
                else:
                    dt = np.int64 if key == "step" else self._params[i].dtype
                    st[key] = np.array(v, dtype=dt)
        self._state_changed()


class Adam(Optimizer):
    """Adam with the semantics of ``torch.optim.Adam`` (``decoupled_weight_decay=True``:
    AdamW). State per parameter: ``step`` (0-d int64 array, steps taken), ``exp_avg``,
    ``exp_avg_sq`` and, with ``amsgrad``, ``max_exp_avg_sq``."""

    _state_keys = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        *,
        maximize=False,
        decoupled_weight_decay=False,
    ):
        defaults = dict(
            lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas, eps=eps,
            weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _check_hparams(self, group):
        _check_adam_hparams(group)

    def _init_state(self, part, group):
        shapes = [p.shape for p in part.params]
        dtype = part.params[0].dtype
        steps = np.zeros(len(shapes), np.int64)
        keys = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group["amsgrad"] else [])
        arrays = {k: flat_zeros(shapes, dtype) for k in keys}
        for j, st in enumerate(part.states):
            st["step"] = steps[j : j + 1].reshape(())
            for k in keys:
                st[k] = arrays[k][j]

    def _prepare(self, group, part):
        """Adds the state amsgrad needs when it was switched on after construction."""
        if group["amsgrad"] and (part.args is None or part.args[2] is None):
            missing = [s for s in part.states if "max_exp_avg_sq" not in s]
            if missing:
                shapes = [s["exp_avg"].shape for s in missing]
                for s, a in zip(missing, flat_zeros(shapes, part.params[0].dtype)):
                    s["max_exp_avg_sq"] = a
                self._state_changed()
            part.args = None

    def _args(self, group, part):
        st = part.states
        vmax = [s["max_exp_avg_sq"] for s in st] if group["amsgrad"] else None
        return ([s["exp_avg"] for s in st], [s["exp_avg_sq"] for s in st], vmax,
                [s["step"] for s in st])

    def _call(self, group, params, grads, args, steps):
        m, v, vmax, counters = args
        beta1, beta2 = group["betas"]
        amsgrad = group["amsgrad"]
        adam_step_multi(
            params, grads, m, v, step_counters=counters, lr=group["lr"], beta1=beta1,
            beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"], amsgrad=amsgrad,
            max_exp_avg_sqs=vmax if amsgrad else None, maximize=group["maximize"],
        )


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (``torch.optim.AdamW``; default 1e-2)."""

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
        *, maximize=False,
    ):
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
            decoupled_weight_decay=True,
        )


class SGD(Optimizer):
    """SGD with the semantics of ``torch.optim.SGD``. State per parameter:
    ``momentum_buffer`` (``None`` until the first step with momentum, as in torch)."""

    _state_keys = ("momentum_buffer",)

    def __init__(
        self, params, lr=None, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
        *, maximize=False,
    ):
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_hparams(self, group):
        _check_sgd_hparams(group)

    def _init_state(self, part, group):
        for st in part.states:
            st["momentum_buffer"] = None

    def _prepare(self, group, part):
        """Allocates the buffers a step with momentum needs. Returns the per-tensor step
        marks for this step when it did (fresh buffers take the gradient itself, torch's
        first-step rule), else None."""
        if group["momentum"] == 0 or (part.args is not None and part.args[0] is not None):
            return None
        part.args = None
        fresh = [s["momentum_buffer"] is None for s in part.states]
        if not any(fresh):
            return None
        fresh_states = [s for s, f in zip(part.states, fresh) if f]
        shapes = [s_p.shape for s_p, f in zip(part.params, fresh) if f]
        for s, a in zip(fresh_states, flat_zeros(shapes, part.params[0].dtype)):
            s["momentum_buffer"] = a
        self._state_changed()
        return [1 if f else 2 for f in fresh]

    def _args(self, group, part):
        if group["momentum"] == 0:
            return (None,)
        return ([s["momentum_buffer"] for s in part.states],)

    def _call(self, group, params, grads, args, steps):
        sgd_step_multi(
            params, grads, args[0], lr=group["lr"], momentum=group["momentum"],
            dampening=group["dampening"], nesterov=group["nesterov"],
            weight_decay=group["weight_decay"], maximize=group["maximize"], steps=steps,
        )


# -- functional form (immutable arrays) ---------------------------------------------------


def _flatten(tree):
    """Leaves and a rebuild function; JAX's pytrees when JAX is in use, else nested
    lists, tuples and dicts (dict leaves in sorted key order, as JAX orders them)."""
    jax = sys.modules.get("jax")
    if jax is not None:
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        return leaves, lambda new: jax.tree_util.tree_unflatten(treedef, new)
    if isinstance(tree, dict):
        keys = sorted(tree)
        subs = [_flatten(tree[k]) for k in keys]
    elif isinstance(tree, (list, tuple)):
        keys = None
        subs = [_flatten(x) for x in tree]
    else:
        return [tree], lambda new: new[0]
    sizes = [len(leaves) for leaves, _ in subs]
    leaves = [x for ls, _ in subs for x in ls]

    def rebuild(new):
        out, at = [], 0
        for (_, rb), n in zip(subs, sizes):
            out.append(rb(new[at : at + n]))
            at += n
        if keys is not None:
            return dict(zip(keys, out))
        return type(tree)(out) if isinstance(tree, list) else tuple(out)

    return leaves, rebuild


def _leaves_like(tree, n, what):
    leaves, _ = _flatten(tree)
    if len(leaves) != n:
        raise ValueError(f"{what} has {len(leaves)} arrays but params has {n}")
    return leaves


def _fresh(x, dtype=None):
    """A new C-contiguous NumPy copy of x (one copy, whatever x is)."""
    return np.array(x, dtype=dtype, order="C", copy=True)


def adam_init(params, *, amsgrad=False):
    """Zero Adam state for ``params`` (a pytree of arrays): ``{"step": 0, "exp_avg":
    tree, "exp_avg_sq": tree[, "max_exp_avg_sq": tree]}`` with trees of NumPy arrays."""
    leaves, rebuild = _flatten(params)
    arrays = [np.asarray(x) for x in leaves]
    state = {
        "step": 0,
        "exp_avg": rebuild([np.zeros(a.shape, a.dtype) for a in arrays]),
        "exp_avg_sq": rebuild([np.zeros(a.shape, a.dtype) for a in arrays]),
    }
    if amsgrad:
        state["max_exp_avg_sq"] = rebuild([np.zeros(a.shape, a.dtype) for a in arrays])
    return state


def adam_update(
    params, grads, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
    amsgrad=False, maximize=False, decoupled_weight_decay=False,
):
    """One Adam step without touching the arguments: returns ``(new_params, new_state)``.

    ``params`` and ``grads`` are pytrees of arrays of the same structure (JAX arrays,
    NumPy arrays, anything NumPy can read); ``state`` comes from :func:`adam_init` or a
    previous call. The parameters and the state are copied once into new NumPy arrays,
    updated there by one multi-tensor kernel call and returned in the structure of
    ``params``; the gradients are read where they are when NumPy can view them.
    """
    hp = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
              maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
    _check_adam_hparams(hp)
    leaves, rebuild = _flatten(params)
    n = len(leaves)
    g = [np.asarray(x) for x in _leaves_like(grads, n, "grads")]
    p = [_fresh(x) for x in leaves]
    keys = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if amsgrad else [])
    if amsgrad and "max_exp_avg_sq" not in state:
        raise ValueError("amsgrad=True needs a state from adam_init(params, amsgrad=True)")
    moments = {k: [_fresh(x, a.dtype) for x, a in zip(_leaves_like(state[k], n, k), p)]
               for k in keys}
    step = int(state["step"]) + 1
    adam_step_multi(
        p, g, moments["exp_avg"], moments["exp_avg_sq"], steps=step, lr=lr, beta1=betas[0],
        beta2=betas[1], eps=eps, weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay, amsgrad=amsgrad,
        max_exp_avg_sqs=moments.get("max_exp_avg_sq"), maximize=maximize,
    )
    new_state = {"step": step, **{k: rebuild(v) for k, v in moments.items()}}
    return rebuild(p), new_state


def sgd_init(params):
    """Empty SGD state: ``{"step": 0, "momentum_buffer": None}`` (buffers come with the
    first step that uses momentum)."""
    return {"step": 0, "momentum_buffer": None}


def sgd_update(
    params, grads, state, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
    nesterov=False, maximize=False,
):
    """One SGD step without touching the arguments: returns ``(new_params, new_state)``
    (see :func:`adam_update` for the copying rules)."""
    hp = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
              nesterov=nesterov, maximize=maximize)
    _check_sgd_hparams(hp)
    leaves, rebuild = _flatten(params)
    n = len(leaves)
    g = [np.asarray(x) for x in _leaves_like(grads, n, "grads")]
    p = [_fresh(x) for x in leaves]
    bufs, steps = None, None
    if momentum != 0:
        old = state.get("momentum_buffer")
        if old is None:
            bufs = [np.empty_like(a) for a in p]
            steps = 1
        else:
            bufs = [_fresh(x, a.dtype) for x, a in zip(_leaves_like(old, n, "momentum_buffer"), p)]
    sgd_step_multi(
        p, g, bufs, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
        weight_decay=weight_decay, maximize=maximize, steps=steps,
    )
    new_state = {
        "step": int(state.get("step", 0)) + 1,
        "momentum_buffer": None if bufs is None else rebuild(bufs),
    }
    return rebuild(p), new_state
