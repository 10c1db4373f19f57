"""trainkern.optim: Adam/AdamW/SGD over NumPy arrays and the functional form, against
loops of the NumPy reference twins (semantics of torch.optim)."""

import pickle

import numpy as np
import pytest
from tolerances import assert_close
from trainkern import optim
from trainkern import reference as ref
from producers import DLPackOnly

SHAPES = [(7,), (3, 5), (16,), (33,), (1,), (4, 4, 2)]


def make(rng, dtype=np.float32, shapes=SHAPES):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def grads_for(rng, params):
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


class RefAdam:
    """The reference loop: one reference adam_step per tensor, state kept here."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False, decoupled=False):
        self.p = params
        self.kw = dict(lr=lr, beta1=betas[0], beta2=betas[1], eps=eps,
                       weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                       decoupled_weight_decay=decoupled)
        self.m = [np.zeros_like(x) for x in params]
        self.v = [np.zeros_like(x) for x in params]
        self.vmax = [np.zeros_like(x) for x in params]
        self.t = [0] * len(params)

    def step(self, grads):
        for i, g in enumerate(grads):
            if g is None:
                continue
            self.t[i] += 1
            ref.adam_step(self.p[i], g, self.m[i], self.v[i], step=self.t[i],
                          max_exp_avg_sq=self.vmax[i] if self.kw["amsgrad"] else None,
                          **self.kw)


@pytest.mark.parametrize(
    "kw",
    [dict(lr=1e-2), dict(lr=1e-2, weight_decay=0.1, amsgrad=True),
     dict(lr=3e-3, betas=(0.8, 0.99), maximize=True)],
    ids=["plain", "wd-amsgrad", "betas-maximize"],
)
def test_adam_follows_the_reference(dtype, rng, kw):
    params = make(rng, dtype)
    expect = [p.copy() for p in params]
    opt = optim.Adam(params, **kw)
    r = RefAdam(expect, **kw)
    for t in range(5):
        grads = grads_for(rng, params)
        if t == 3:
            grads[1] = None  # skipped: no update, no step count
        opt.step(grads)
        r.step(grads)
    for a, b in zip(params, expect):
        assert_close(a, b, "adam", dtype)
    assert [int(opt.state[i]["step"]) for i in range(len(params))] == r.t
    for i in range(len(params)):
        assert_close(opt.state[i]["exp_avg"], r.m[i], "adam", dtype)
        assert_close(opt.state[i]["exp_avg_sq"], r.v[i], "adam", dtype)


def test_adamw_decouples_weight_decay(rng):
    params = make(rng)
    expect = [p.copy() for p in params]
    opt = optim.AdamW(params, lr=1e-2)
    assert opt.param_groups[0]["weight_decay"] == 1e-2
    r = RefAdam(expect, lr=1e-2, weight_decay=1e-2, decoupled=True)
    for _ in range(3):
        grads = grads_for(rng, params)
        opt.step(grads)
        r.step(grads)
    for a, b in zip(params, expect):
        assert_close(a, b, "adam", np.float32)


@pytest.mark.parametrize(
    "kw",
    [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.9, nesterov=True),
     dict(lr=0.1, momentum=0.5, dampening=0.2, weight_decay=0.01, maximize=True)],
    ids=["plain", "momentum", "nesterov", "dampening"],
)
def test_sgd_follows_the_reference(dtype, rng, kw):
    params = make(rng, dtype)
    expect = [p.copy() for p in params]
    opt = optim.SGD(params, **kw)
    bufs = [np.zeros_like(p) for p in params]
    seen = [0] * len(params)
    for t in range(4):
        grads = grads_for(rng, params)
        if t == 0:
            grads[2] = None  # its buffer starts one step later, with the first-step rule
        opt.step(grads)
        for i, g in enumerate(grads):
            if g is None:
                continue
            seen[i] += 1
            ref.sgd_step(expect[i], g, bufs[i], step=seen[i], **kw)
    for a, b in zip(params, expect):
        assert_close(a, b, "sgd", dtype)
    if kw.get("momentum"):
        for i in range(len(params)):
            assert_close(opt.state[i]["momentum_buffer"], bufs[i], "sgd", dtype)
    else:
        assert all(opt.state[i]["momentum_buffer"] is None for i in range(len(params)))


def test_param_groups_have_their_own_hyper_parameters_and_dtypes(rng):
    a = make(rng, np.float32, [(5,), (9,)])
    b = make(rng, np.float64, [(4,)]) + make(rng, np.float32, [(3,)])  # two dtypes, one group
    ea, eb = [x.copy() for x in a], [x.copy() for x in b]
    opt = optim.Adam([{"params": a}, {"params": b, "lr": 0.1, "weight_decay": 0.5}], lr=1e-2)
    ra, rb = RefAdam(ea, lr=1e-2), RefAdam(eb, lr=0.1, weight_decay=0.5)
    for _ in range(3):
        g = grads_for(rng, a + b)
        opt.step(g)
        ra.step(g[:2])
        rb.step(g[2:])
    for x, y in zip(a + b, ea + eb):
        assert_close(x, y, "adam", x.dtype)
    assert opt.param_groups[1]["params"] == [2, 3]


def test_learning_rate_changes_take_effect(rng):
    params = make(rng)
    expect = [p.copy() for p in params]
    opt = optim.Adam(params, lr=1e-2)
    r = RefAdam(expect, lr=1e-2)
    for lr in (1e-2, 1e-3, 0.0):
        opt.param_groups[0]["lr"] = lr
        r.kw["lr"] = lr
        g = grads_for(rng, params)
        opt.step(g)
        r.step(g)
    for a, b in zip(params, expect):
        assert_close(a, b, "adam", np.float32)


def test_state_is_zero_copy_and_read_only_as_a_mapping(rng):
    params = make(rng)
    opt = optim.Adam(params, lr=1e-2)
    m0 = opt.state[0]["exp_avg"]
    opt.step(grads_for(rng, params))
    assert np.any(m0 != 0)  # the view taken before the step sees the update
    assert np.shares_memory(m0, opt.state[0]["exp_avg"])
    with pytest.raises(TypeError):
        opt.state[0]["exp_avg"] = np.zeros_like(m0)
    # In-place edits reach the kernel.
    opt.state[0]["exp_avg"][...] = 0
    opt.state[0]["exp_avg_sq"][...] = 0
    opt.state[0]["step"][...] = 0
    fresh = params[0].copy()
    m, v = np.zeros_like(fresh), np.zeros_like(fresh)
    g = grads_for(rng, params)
    expect = params[0].copy()
    ref.adam_step(expect, g[0], m, v, step=1, lr=1e-2)
    opt.step(g)
    assert_close(params[0], expect, "adam", np.float32)
    assert opt.params[0] is params[0]


def test_load_state_dict_into_a_fresh_optimizer_continues_the_run(rng):
    init = make(rng)
    grads = [grads_for(rng, init) for _ in range(6)]
    full = [x.copy() for x in init]
    opt = optim.Adam(full, lr=1e-2, amsgrad=True)
    for g in grads:
        opt.step(g)

    half = [x.copy() for x in init]
    opt1 = optim.Adam(half, lr=1e-2, amsgrad=True)
    for g in grads[:3]:
        opt1.step(g)
    sd = pickle.loads(pickle.dumps(opt1.state_dict()))
    opt1.step(grads[3])  # the snapshot must not see later steps
    assert int(sd["state"][0]["step"]) == 3

    # Parameters as they were at the snapshot: redo the first three steps on a copy.
    at3 = [x.copy() for x in init]
    o3 = optim.Adam(at3, lr=1e-2, amsgrad=True)
    for g in grads[:3]:
        o3.step(g)
    opt2 = optim.Adam(at3, lr=0.5)  # other hyper-parameters: the state dict's win
    views = [opt2.state[i]["exp_avg"] for i in range(len(at3))]
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 1e-2 and opt2.param_groups[0]["amsgrad"]
    assert all(np.shares_memory(v, opt2.state[i]["exp_avg"]) for i, v in enumerate(views))
    for g in grads[3:]:
        opt2.step(g)
    for a, b in zip(at3, full):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_checks_before_writing(rng):
    params = make(rng)
    opt = optim.Adam(params, lr=1e-2)
    opt.step(grads_for(rng, params))
    sd = opt.state_dict()
    sd["state"][2]["exp_avg"] = np.zeros(3, np.float32)
    before = opt.state[0]["exp_avg"].copy()
    sd["state"][0]["exp_avg"][...] = 7
    with pytest.raises(ValueError, match=r"exp_avg has shape \(3,\), expected \(16,\)"):
        opt.load_state_dict(sd)
    np.testing.assert_array_equal(opt.state[0]["exp_avg"], before)
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})


def test_zero_state_restarts(rng):
    params = make(rng)
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    opt.step(grads_for(rng, params))
    opt.zero_state()
    assert opt.state[0]["momentum_buffer"] is None
    expect = [p.copy() for p in params]
    g = grads_for(rng, params)
    opt.step(g)
    for i in range(len(params)):
        ref.sgd_step(expect[i], g[i], np.zeros_like(expect[i]), lr=0.1, momentum=0.9, step=1)
        assert_close(params[i], expect[i], "sgd", np.float32)


@pytest.mark.parametrize(
    "make_opt, exc, match",
    [
        (lambda p: optim.Adam(p, lr=-1.0), ValueError, "Invalid learning rate"),
        (lambda p: optim.Adam(p, betas=(0.9, 1.0)), ValueError, "beta parameter at index 1"),
        (lambda p: optim.Adam(p, eps=-1e-8), ValueError, "epsilon"),
        (lambda p: optim.Adam(p, weight_decay=float("nan")), ValueError, "weight_decay"),
        (lambda p: optim.Adam(p, amsgrad=1), TypeError, "amsgrad must be a bool"),
        (lambda p: optim.Adam([{"params": p, "momentum": 0.9}]), TypeError, "unknown"),
        (lambda p: optim.SGD(p), TypeError, "needs a learning rate"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-0.1), ValueError, "momentum"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), ValueError, "Nesterov"),
        (lambda p: optim.Adam(p[0]), TypeError, "wrap it in a list"),
        (lambda p: optim.Adam([]), ValueError, "empty parameter list"),
        (lambda p: optim.Adam([p[0], p[0]]), ValueError, r"params\[1\] shares memory"),
        (lambda p: optim.Adam([p[0].astype(np.int32)]), TypeError, "float32 or float64"),
        (lambda p: optim.Adam([p[1].T]), ValueError, "C-contiguous"),
        (lambda p: optim.Adam([np.frombuffer(p[0].tobytes(), np.float32)]), ValueError,
         "read-only"),
    ],
)
def test_construction_validates(rng, make_opt, exc, match):
    with pytest.raises(exc, match=match):
        make_opt(make(rng))


def test_step_checks_gradients(rng):
    params = make(rng)
    opt = optim.Adam(params)
    with pytest.raises(ValueError, match="got 2 gradients for 6 parameters"):
        opt.step(grads_for(rng, params)[:2])
    g = grads_for(rng, params)
    g[4] = np.zeros(2, np.float32)
    before = [p.copy() for p in params]
    with pytest.raises(ValueError, match=r"grads\[4\] has shape \(2,\) but params\[4\]"):
        opt.step(g)
    for a, b in zip(params, before):
        np.testing.assert_array_equal(a, b)


def test_dlpack_producers_are_updated_in_place(rng):
    raw = make(rng)
    expect = [p.copy() for p in raw]
    opt = optim.Adam([DLPackOnly(p) for p in raw], lr=1e-2)
    r = RefAdam(expect, lr=1e-2)
    for _ in range(2):
        g = grads_for(rng, raw)
        opt.step([DLPackOnly(x) for x in g])
        r.step(g)
    for a, b in zip(raw, expect):
        assert_close(a, b, "adam", np.float32)
    assert np.shares_memory(opt.params[0], raw[0])


def test_torch_tensors_are_optimized_in_place(rng):
    torch = pytest.importorskip("torch")
    t = [torch.randn(5, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)]
    expect = [x.numpy().copy() for x in t]
    opt = optim.SGD(t, lr=0.1, momentum=0.9)
    g = [torch.randn_like(x) for x in t]
    opt.step(g)
    for x, e, gg in zip(t, expect, g):
        ref.sgd_step(e, gg.numpy(), np.zeros_like(e), lr=0.1, momentum=0.9, step=1)
        assert_close(x.numpy(), e, "sgd", np.float64)


# -- functional form ----------------------------------------------------------------------


def test_adam_update_is_pure_and_keeps_the_structure(rng):
    params = {"w": rng.standard_normal((3, 4)).astype(np.float32),
              "layers": [rng.standard_normal(5).astype(np.float32),
                         (rng.standard_normal(2).astype(np.float32),)]}
    grads = {"w": np.ones((3, 4), np.float32),
             "layers": [np.full(5, -1.0, np.float32), (np.full(2, 0.5, np.float32),)]}
    snapshot = pickle.dumps((params, grads))
    state = optim.adam_init(params, amsgrad=True)
    p1, s1 = optim.adam_update(params, grads, state, lr=0.1, weight_decay=0.1, amsgrad=True)
    p2, s2 = optim.adam_update(p1, grads, s1, lr=0.1, weight_decay=0.1, amsgrad=True)
    assert pickle.dumps((params, grads)) == snapshot  # arguments untouched
    assert s1["step"] == 1 and s2["step"] == 2
    assert isinstance(p2["layers"][1], tuple) and p2["w"].shape == (3, 4)
    leaves = [params["w"], params["layers"][0], params["layers"][1][0]]
    gl = [grads["w"], grads["layers"][0], grads["layers"][1][0]]
    got = [p2["w"], p2["layers"][0], p2["layers"][1][0]]
    for x, g, y in zip(leaves, gl, got):
        e, m, v, vm = x.copy(), np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
        for t in (1, 2):
            ref.adam_step(e, g, m, v, step=t, lr=0.1, weight_decay=0.1, amsgrad=True,
                          max_exp_avg_sq=vm)
        assert_close(y, e, "adam", np.float32)


def test_sgd_update_matches_the_class(rng):
    params = make(rng)
    cls_params = [p.copy() for p in params]
    opt = optim.SGD(cls_params, lr=0.1, momentum=0.9, nesterov=True)
    state = optim.sgd_init(params)
    for _ in range(3):
        g = grads_for(rng, params)
        params, state = optim.sgd_update(params, g, state, lr=0.1, momentum=0.9, nesterov=True)
        opt.step(g)
    for a, b in zip(params, cls_params):
        np.testing.assert_array_equal(a, b)


def test_functional_checks_structure_and_hyper_parameters(rng):
    params = make(rng)
    state = optim.adam_init(params)
    with pytest.raises(ValueError, match="grads has 2 arrays but params has 6"):
        optim.adam_update(params, params[:2], state)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.adam_update(params, params, state, lr=-1)
    with pytest.raises(ValueError, match="needs a state from adam_init"):
        optim.adam_update(params, params, state, amsgrad=True)
