"""Activations on 10M float32 elements, 1 and 2 threads: trainkern vs NumPy (trainkern.reference)
vs torch, with the machine's roof in the same group: a copy stream (8 B/element) for the
forward, a 2-read/1-write stream (12 B/element) for the backward (trainkern._core.stream_pass).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=python \\
        python -m pytest bench/bench_activations.py --benchmark-only
"""

import numpy as np
import pytest
import trainkern
from trainkern import _core
from trainkern import reference as ref

N = 10_000_000
THREADS = [1, 2]
SAMPLE = slice(0, 20_000)  # results are checked on this slice against the reference


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# name -> (trainkern forward, trainkern backward, reference forward, reference backward,
#          torch forward, torch backward (aten op), backward takes y)
def _acts():
    t = _torch()
    aten = t.ops.aten if t is not None else None
    F = t.nn.functional if t is not None else None
    return {
        "relu": (
            trainkern.relu,
            trainkern.relu_backward,
            ref.relu,
            ref.relu_backward,
            F and (lambda x, out: t.clamp_min(x, 0, out=out)),
            aten and (lambda g, x: aten.threshold_backward(g, x, 0)),
            False,
        ),
        "leaky_relu": (
            trainkern.leaky_relu,
            trainkern.leaky_relu_backward,
            ref.leaky_relu,
            ref.leaky_relu_backward,
            F and (lambda x, out: aten.leaky_relu.out(x, 0.01, out=out)),
            aten and (lambda g, x: aten.leaky_relu_backward(g, x, 0.01, False)),
            False,
        ),
        "sigmoid": (
            trainkern.sigmoid,
            trainkern.sigmoid_backward,
            ref.sigmoid,
            ref.sigmoid_backward,
            F and (lambda x, out: t.sigmoid(x, out=out)),
            aten and (lambda g, y: aten.sigmoid_backward(g, y)),
            True,
        ),
        "tanh": (
            trainkern.tanh,
            trainkern.tanh_backward,
            ref.tanh,
            ref.tanh_backward,
            F and (lambda x, out: t.tanh(x, out=out)),
            aten and (lambda g, y: aten.tanh_backward(g, y)),
            True,
        ),
        "gelu": (
            trainkern.gelu,
            trainkern.gelu_backward,
            ref.gelu,
            ref.gelu_backward,
            F and (lambda x, out: aten.gelu.out(x, out=out)),
            aten and (lambda g, x: aten.gelu_backward(g, x)),
            False,
        ),
        "gelu_tanh": (
            lambda x, out=None: trainkern.gelu(x, "tanh", out=out),
            lambda g, x, out=None: trainkern.gelu_backward(g, x, "tanh", out=out),
            lambda x: ref.gelu(x, "tanh"),
            lambda g, x: ref.gelu_backward(g, x, "tanh"),
            F and (lambda x, out: aten.gelu.out(x, approximate="tanh", out=out)),
            aten and (lambda g, x: aten.gelu_backward(g, x, approximate="tanh")),
            False,
        ),
        "silu": (
            trainkern.silu,
            trainkern.silu_backward,
            ref.silu,
            ref.silu_backward,
            F and (lambda x, out: F.silu(x) if out is None else out.copy_(F.silu(x))),
            aten and (lambda g, x: aten.silu_backward(g, x)),
            False,
        ),
    }


ACTS = _acts()
NAMES = list(ACTS)


# Inputs of unit scale (as torch.randn, and normalized pre-activations) and of scale 3: the
# GELUs take blocks whose inputs all lie within |x| < 63/16 from tables (AVX-512), which
# inputs of scale 3 almost never allow.
@pytest.fixture(scope="module", params=[1.0, 3.0], ids=["N(0,1)", "N(0,3)"])
def data(request):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(N) * request.param).astype(np.float32)
    g = rng.standard_normal(N).astype(np.float32)
    ys = {name: ACTS[name][0](x) for name in NAMES}
    label = f"N(0,{request.param:g})"
    return {"x": x, "g": g, "y": ys, "out": np.empty_like(x), "tmp": np.empty_like(x),
            "label": label}


@pytest.fixture
def threads_set(request):
    yield
    _core._reset_num_threads()
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(1)


def _gbps(benchmark, nbytes):
    benchmark.extra_info["bytes"] = nbytes
    benchmark.extra_info["GB/s"] = nbytes / benchmark.stats["median"] / 1e9


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("name", NAMES)
def test_forward_trainkern(benchmark, data, name, threads, threads_set):
    trainkern.set_num_threads(threads)
    benchmark.group = f"{name}-forward-10M-{data['label']}-{threads}t"
    fwd, _, rfwd, *_ = ACTS[name]
    out = data["out"]
    benchmark.pedantic(fwd, args=(data["x"],), kwargs={"out": out}, rounds=15, warmup_rounds=2)
    np.testing.assert_allclose(out[SAMPLE], rfwd(data["x"][SAMPLE]), rtol=1e-6, atol=1e-30)
    _gbps(benchmark, 8 * N)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("name", NAMES)
def test_backward_trainkern(benchmark, data, name, threads, threads_set):
    trainkern.set_num_threads(threads)
    benchmark.group = f"{name}-backward-10M-{data['label']}-{threads}t"
    _, bwd, _, rbwd, _, _, from_y = ACTS[name]
    v = data["y"][name] if from_y else data["x"]
    out = data["out"]
    benchmark.pedantic(bwd, args=(data["g"], v), kwargs={"out": out}, rounds=15, warmup_rounds=2)
    np.testing.assert_allclose(
        out[SAMPLE], rbwd(data["g"][SAMPLE], v[SAMPLE]), rtol=1e-5, atol=1e-6
    )
    _gbps(benchmark, 12 * N)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("name", NAMES)
def test_roof(benchmark, data, name, direction, threads, threads_set):
    """The bandwidth roof in the same group: copy (forward) or 2-read/1-write (backward)."""
    trainkern.set_num_threads(threads)
    benchmark.group = f"{name}-{direction}-10M-{data['label']}-{threads}t"
    arrays = (
        [data["x"], data["out"]] if direction == "forward" else [data["x"], data["g"], data["out"]]
    )
    kind = 1 if direction == "forward" else 2
    moved = benchmark.pedantic(_core.stream_pass, args=(kind, arrays), rounds=15, warmup_rounds=2)
    assert moved == (8 if kind == 1 else 12) * N
    _gbps(benchmark, moved)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_numpy(benchmark, data, name, direction):
    benchmark.group = f"{name}-{direction}-10M-{data['label']}-1t"
    _, _, rfwd, rbwd, _, _, from_y = ACTS[name]
    slow = name.startswith("gelu") or name == "silu"
    if direction == "forward":
        y = benchmark.pedantic(rfwd, args=(data["x"],), rounds=2 if slow else 5)
        np.testing.assert_allclose(y[SAMPLE], data["y"][name][SAMPLE], rtol=1e-6, atol=1e-30)
        _gbps(benchmark, 8 * N)
    else:
        v = data["y"][name] if from_y else data["x"]
        gx = benchmark.pedantic(rbwd, args=(data["g"], v), rounds=2 if slow else 5)
        assert gx.shape == v.shape and np.isfinite(gx[SAMPLE]).all()
        _gbps(benchmark, 12 * N)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("name", NAMES)
def test_torch(benchmark, data, name, direction, threads, threads_set):
    torch = _torch()
    if torch is None:
        pytest.skip("torch is not installed")
    torch.set_num_threads(threads)
    benchmark.group = f"{name}-{direction}-10M-{data['label']}-{threads}t"
    _, _, _, _, tfwd, tbwd, from_y = ACTS[name]
    x = torch.from_numpy(data["x"])
    if direction == "forward":
        out = torch.from_numpy(data["tmp"])
        benchmark.pedantic(tfwd, args=(x, out), rounds=10, warmup_rounds=1)
        np.testing.assert_allclose(
            data["tmp"][SAMPLE], data["y"][name][SAMPLE], rtol=1e-4, atol=1e-5
        )
        _gbps(benchmark, 8 * N)
    else:
        v = torch.from_numpy(data["y"][name]) if from_y else x
        gx = benchmark.pedantic(
            tbwd, args=(torch.from_numpy(data["g"]), v), rounds=10, warmup_rounds=1
        )
        assert gx.shape == v.shape
        _gbps(benchmark, 12 * N)
