"""Every public kernel once on small arrays, through each intake path (NumPy, memoryview,
DLPack, torch when installed), plus refused calls: the workload of the memory checks.

tests/test_memory.py repeats it 10,000 times and watches the resident set; run as a script
(`python tests/kernel_workload.py ROUNDS`) it is what the LeakSanitizer run in
docs/hardening.md executes.
"""

from __future__ import annotations

import sys

import numpy as np
import trainkern
from producers import DLPackOnly


def calls():
    """Zero-argument callables, one per kernel and intake path; each runs in place or
    returns fresh arrays that the caller drops."""
    rng = np.random.default_rng(0)
    f32 = np.float32

    def arr(*shape, nonneg=False):
        a = rng.standard_normal(shape).astype(f32)
        return np.abs(a) if nonneg else a

    p, g, m, v, vmax = arr(257), arr(257), arr(257), arr(257, nonneg=True), arr(257, nonneg=True)
    x, gy, out = arr(33, 9), arr(33, 9), arr(33, 9)
    logits, labels, probs = arr(17, 10), rng.integers(0, 10, 17), arr(17, 10, nonneg=True)
    a, b, bias = arr(9, 13), arr(13, 7), arr(7)
    ps, gs, ms, vs = ([arr(n) for n in (3, 64, 100)] for _ in range(4))
    counters = [np.zeros((), np.float32) for _ in ps]
    bad = np.zeros(5, np.int32)
    ro = arr(257)
    ro.flags.writeable = False
    todo = [
        lambda: trainkern.adam_step(p, g, m, v, step=1, lr=1e-6),
        lambda: trainkern.adam_step(p, g, m, v, step=2, lr=1e-6, amsgrad=True,
                                    max_exp_avg_sq=vmax, grad_scale=2.0),
        lambda: trainkern.sgd_step(p, g, m, lr=1e-6, momentum=0.9),
        lambda: trainkern.sgd_step(memoryview(p), DLPackOnly(g), lr=1e-6),
        lambda: trainkern.adam_step_multi(ps, gs, ms, vs, steps=[1, 2, 3], lr=1e-6),
        lambda: trainkern.adam_step_multi(ps, gs, ms, vs, step_counters=counters, lr=1e-6),
        lambda: trainkern.sgd_step_multi(ps, gs, ms, lr=1e-6, momentum=0.5, steps=1),
        lambda: trainkern.softmax_cross_entropy(logits, labels),
        lambda: trainkern.softmax_cross_entropy(logits, probs / probs.sum(1, keepdims=True),
                                                label_smoothing=0.1, reduction="none"),
        lambda: trainkern.mse_loss(x, gy, out=out),
        lambda: trainkern.mse_loss(x.T, gy.T, reduction="none"),
        # refused calls: the error paths must not leak either
        lambda: trainkern.adam_step(p, g, m, ro, step=1),
        lambda: trainkern.relu(bad),
        lambda: trainkern.sgd_step_multi([p], [g, g], lr=0.1),
        lambda: trainkern.softmax_cross_entropy(logits, labels + 10),
        lambda: trainkern.relu(x, out=x[:, :3]),
    ]
    for name in ("relu", "leaky_relu", "sigmoid", "tanh", "gelu", "silu"):
        fwd, bwd = getattr(trainkern, name), getattr(trainkern, name + "_backward")
        todo += [
            lambda f=fwd: f(x),
            lambda f=fwd: f(x.T),  # strided input: read through a copy
            lambda f=fwd: f(out, out=out),
            lambda f=bwd: f(gy, x),
            lambda f=bwd: f(memoryview(gy), x, out=out),
        ]
    if hasattr(trainkern, "linear"):
        todo += [
            lambda: trainkern.matmul(a, b),
            lambda: trainkern.linear(a, b, bias, activation="gelu", return_preact=True),
            lambda: trainkern.linear_backward(arr(9, 7), a, b, activation="relu",
                                              y=arr(9, 7)),
            lambda: trainkern.matmul(a, a),
        ]
    try:
        import torch
    except ImportError:
        return todo
    tp, tg, tm, tv = (torch.from_numpy(q.copy()) for q in (p, g, m, v))
    tx = torch.from_numpy(x.copy())
    todo += [
        lambda: trainkern.adam_step(tp, tg, tm, tv, step=1, lr=1e-6),
        lambda: trainkern.gelu(tx),
        lambda: trainkern.relu(tx, out=tx),
    ]
    return todo


def run(todo, rounds):
    refused = 0
    for _ in range(rounds):
        for call in todo:
            try:
                call()
            except (TypeError, ValueError):
                refused += 1
    return refused


if __name__ == "__main__":
    todo = calls()
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    refused = run(todo, rounds)
    print(f"{len(todo)} calls x {rounds} rounds, {refused} refused")
