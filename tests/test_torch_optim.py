"""trainkern.torch: drop-in torch.optim optimizers, compared with torch.optim itself."""

import copy
import io
import pickle
import subprocess
import sys

import numpy as np
import pytest
from tolerances import tolerance

torch = pytest.importorskip("torch")
tkt = pytest.importorskip("trainkern.torch")

F = torch.nn.functional


@pytest.fixture(autouse=True, scope="module")
def torch_on_one_thread():
    """The models are tiny; torch's 2-thread regions stall on a loaded 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def mlp(dtype, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(20, 64), torch.nn.Tanh(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
        torch.nn.Linear(32, 10),
    ).to(dtype)


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(128, 20, generator=g), torch.randint(0, 10, (128,), generator=g)


def train(model, opt, data, steps, set_to_none=True):
    x, y = data
    x = x.to(next(model.parameters()).dtype)
    for _ in range(steps):
        opt.zero_grad(set_to_none=set_to_none)
        F.cross_entropy(model(x), y).backward()
        opt.step()


def assert_params_close(ours, theirs, dtype, op="torch_mlp_100"):
    rtol, _ = tolerance(op, str(dtype).removeprefix("torch."))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        a, b = a.detach(), b.detach()
        rel = ((a - b).norm() / b.norm()).item()
        assert rel <= rtol, f"parameter {i}: relative error {rel:.3g} > {rtol:g}"


CASES = [
    ("Adam", dict(lr=1e-3)),
    ("Adam", dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, amsgrad=True)),
    ("Adam", dict(lr=1e-3, decoupled_weight_decay=True, weight_decay=0.05)),
    ("AdamW", dict(lr=1e-3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1)),
    ("SGD", dict(lr=0.05)),
]


@pytest.mark.parametrize("name, kw", CASES, ids=lambda c: c if isinstance(c, str) else
                         ",".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_100_steps_of_an_mlp_match_torch(name, kw, dtype, data):
    ours, theirs = mlp(dtype), mlp(dtype)
    train(ours, getattr(tkt, name)(ours.parameters(), **kw), data, 100)
    train(theirs, getattr(torch.optim, name)(theirs.parameters(), **kw), data, 100)
    assert_params_close(ours.parameters(), theirs.parameters(), dtype)


def groups(model, lr_scale=1.0):
    layers = list(model.children())
    return [
        {"params": layers[0].parameters()},
        {"params": layers[2].parameters(), "lr": 5e-3 * lr_scale, "weight_decay": 0.1},
        {"params": layers[4].parameters(), "amsgrad": True, "betas": (0.5, 0.9)},
    ]


def test_param_groups_with_their_own_hyper_parameters(data):
    ours, theirs = mlp(torch.float64), mlp(torch.float64)
    opt_a, opt_b = tkt.Adam(groups(ours), lr=1e-3), torch.optim.Adam(groups(theirs), lr=1e-3)
    train(ours, opt_a, data, 30)
    train(theirs, opt_b, data, 30)
    assert_params_close(ours.parameters(), theirs.parameters(), torch.float64)
    assert [g["lr"] for g in opt_a.param_groups] == [1e-3, 5e-3, 1e-3]


@pytest.mark.parametrize("set_to_none", [True, False], ids=["fresh-grads", "kept-grads"])
def test_zero_grad_modes(set_to_none, data):
    ours, theirs = mlp(torch.float64), mlp(torch.float64)
    train(ours, tkt.SGD(ours.parameters(), lr=0.1, momentum=0.9), data, 5, set_to_none)
    train(theirs, torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9), data, 5,
          set_to_none)
    assert_params_close(ours.parameters(), theirs.parameters(), torch.float64)


def test_closure_returns_the_loss(data):
    x, y = data
    results = []
    for mod in (tkt, torch.optim):
        model = mlp(torch.float32)
        opt = mod.Adam(model.parameters(), lr=1e-2)

        def closure(model=model, opt=opt):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            return loss

        losses = [opt.step(closure).item() for _ in range(3)]
        results.append((losses, list(model.parameters())))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    assert_params_close(results[0][1], results[1][1], torch.float32)


def test_lr_scheduler_drives_the_learning_rate(data):
    ours, theirs = mlp(torch.float64), mlp(torch.float64)
    runs = []
    for model, mod in ((ours, tkt), (theirs, torch.optim)):
        opt = mod.AdamW(model.parameters(), lr=1e-2)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
        for _ in range(6):
            train(model, opt, data, 1)
            sched.step()
        runs.append(opt.param_groups[0]["lr"])
    assert runs[0] == pytest.approx(1e-5)
    assert_params_close(ours.parameters(), theirs.parameters(), torch.float64)


def test_parameters_without_gradients_are_skipped(data):
    model = mlp(torch.float32)
    frozen = list(model.children())[0]
    frozen.requires_grad_(False)
    before = [p.detach().clone() for p in frozen.parameters()]
    opt = tkt.Adam(model.parameters(), lr=1e-2)
    train(model, opt, data, 3)
    for a, b in zip(frozen.parameters(), before):
        assert torch.equal(a, b)
    assert all(p not in opt.state for p in frozen.parameters())
    # Gradients appear later: the optimizer picks the parameters up from then on.
    frozen.requires_grad_(True)
    train(model, opt, data, 1)
    assert all(opt.state[p]["step"].item() == 1.0 for p in frozen.parameters())
    assert opt.state[list(model.parameters())[-1]]["step"].item() == 4.0


def test_mixed_dtypes_in_one_group():
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(5)),
         torch.nn.Parameter(torch.randn(7, dtype=torch.float64))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    opt_a, opt_b = tkt.Adam(a, lr=0.1), torch.optim.Adam(b, lr=0.1)
    for _ in range(3):
        for ps, opt in ((a, opt_a), (b, opt_b)):
            for p in ps:
                p.grad = torch.sin(p.detach() * 3)
            opt.step()
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)


# -- state dicts -----------------------------------------------------------------------------


def test_state_keys_match_torch(data):
    for name, kw in [("Adam", dict(amsgrad=True)), ("AdamW", {}), ("SGD", dict(momentum=0.9))]:
        ours, theirs = mlp(torch.float32), mlp(torch.float32)
        oa = getattr(tkt, name)(ours.parameters(), lr=1e-3, **kw)
        ob = getattr(torch.optim, name)(theirs.parameters(), lr=1e-3, **kw)
        train(ours, oa, data, 2)
        train(theirs, ob, data, 2)
        sa, sb = oa.state_dict(), ob.state_dict()
        assert sa["param_groups"] == sb["param_groups"]
        assert sa["state"].keys() == sb["state"].keys()
        for k in sb["state"]:
            assert sa["state"][k].keys() == sb["state"][k].keys()
            for key, v in sb["state"][k].items():
                w = sa["state"][k][key]
                assert type(w) is type(v) and w.dtype == v.dtype and w.shape == v.shape, key


@pytest.mark.parametrize("name, kw", [("Adam", dict(lr=1e-2, amsgrad=True)),
                                      ("SGD", dict(lr=0.05, momentum=0.9))])
@pytest.mark.parametrize("direction", ["torch-to-ours", "ours-to-torch"])
def test_state_dict_moves_between_torch_and_ours(name, kw, direction, data):
    """Train 5 steps with one, load its state into the other, train 5 more: the same as
    10 steps of torch.optim alone."""
    reference = mlp(torch.float64)
    train(reference, getattr(torch.optim, name)(reference.parameters(), **kw), data, 10)

    first, second = (torch.optim, tkt) if direction == "torch-to-ours" else (tkt, torch.optim)
    model = mlp(torch.float64)
    opt1 = getattr(first, name)(model.parameters(), **kw)
    train(model, opt1, data, 5)
    buf = io.BytesIO()
    torch.save(opt1.state_dict(), buf)
    buf.seek(0)
    # weights_only: the saved state holds nothing but tensors and plain containers.
    saved = torch.load(buf, weights_only=True)
    opt2 = getattr(second, name)(model.parameters(), lr=0.5)
    opt2.load_state_dict(saved)
    train(model, opt2, data, 5)
    assert_params_close(model.parameters(), reference.parameters(), torch.float64)


def test_state_dict_pickles_as_plain_containers(data):
    model = mlp(torch.float32)
    opt = tkt.Adam(model.parameters())
    train(model, opt, data, 1)
    sd = opt.state_dict()
    assert type(pickle.loads(pickle.dumps(sd["state"][0]))) is dict
    assert type(copy.deepcopy(sd)["state"][0]) is dict
    assert b"trainkern" not in pickle.dumps(sd)


def replace_storage(opt, model):
    """A parameter's storage replaced (as ZeroRedundancyOptimizer's bucket views do)."""
    p = next(model.parameters())
    p.data = p.data.clone()


def replace_entry(opt, model):
    """A whole state entry replaced (as ZeroRedundancyOptimizer.load_state_dict does)."""
    p = list(model.parameters())[2]
    opt.state[p] = {k: v.clone() for k, v in opt.state[p].items()}


def replace_tensor(opt, model):
    """One tensor of a state entry replaced."""
    p = list(model.parameters())[4]
    opt.state[p]["exp_avg"] = opt.state[p]["exp_avg"] * 0.5


def reload(opt, model):
    opt.load_state_dict(copy.deepcopy(opt.state_dict()))


@pytest.mark.parametrize("change", [replace_storage, replace_entry, replace_tensor, reload])
def test_changes_to_state_and_parameters_are_seen(change, data):
    """Views are cached between steps; replacing what they view must not go unnoticed."""
    ours, theirs = mlp(torch.float64), mlp(torch.float64)
    both = ((ours, tkt.Adam(ours.parameters(), lr=1e-2)),
            (theirs, torch.optim.Adam(theirs.parameters(), lr=1e-2)))
    for model, opt in both:
        train(model, opt, data, 2)
        change(opt, model)
        train(model, opt, data, 2)
    assert_params_close(ours.parameters(), theirs.parameters(), torch.float64)
    # The state the optimizer shows is the state it steps with.
    sa, sb = both[0][1].state_dict()["state"], both[1][1].state_dict()["state"]
    for k in sb:
        assert_params_close([sa[k]["exp_avg"], sa[k]["exp_avg_sq"], sa[k]["step"]],
                            [sb[k]["exp_avg"], sb[k]["exp_avg_sq"], sb[k]["step"]],
                            torch.float64)


def test_amsgrad_switched_on_later(data):
    model = mlp(torch.float64)
    opt = tkt.Adam(model.parameters(), lr=1e-2)
    train(model, opt, data, 2)
    opt.param_groups[0]["amsgrad"] = True
    train(model, opt, data, 2)
    p = next(model.parameters())
    assert opt.state[p]["max_exp_avg_sq"].abs().sum() > 0


# -- refusals --------------------------------------------------------------------------------


def test_sparse_gradients_are_refused():
    emb = torch.nn.Embedding(10, 4, sparse=True)
    opt = tkt.Adam(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    before = emb.weight.detach().clone()
    with pytest.raises(TypeError, match="does not support sparse gradients"):
        opt.step()
    assert torch.equal(emb.weight, before)


@pytest.mark.parametrize(
    "param, exc, match",
    [
        (lambda: torch.randn(3, dtype=torch.complex64), TypeError, "complex"),
        (lambda: torch.randn(3, dtype=torch.float16), TypeError, "float16"),
        (lambda: torch.randn(3, device="meta"), TypeError, "on meta"),
        (lambda: torch.randn(4, 5).t(), ValueError, "not contiguous"),
        (lambda: torch.randn(4, 4).to_sparse(), TypeError, "sparse"),
    ],
    ids=["complex", "half", "meta", "strided", "sparse"],
)
def test_unsupported_parameters_are_refused(param, exc, match):
    p = torch.nn.Parameter(param(), requires_grad=True) if param().is_floating_point() or \
        param().is_complex() else param()
    with pytest.raises(exc, match=match):
        tkt.Adam([p])
    with pytest.raises(exc, match=match):
        tkt.SGD([torch.nn.Parameter(torch.randn(2)), p], lr=0.1)


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda ps: tkt.Adam(ps, lr=-1.0), ValueError, "Invalid learning rate"),
        (lambda ps: tkt.Adam(ps, betas=(1.0, 0.9)), ValueError, "beta parameter at index 0"),
        (lambda ps: tkt.Adam(ps, capturable=True), ValueError, "capturable=True"),
        (lambda ps: tkt.AdamW(ps, differentiable=True), ValueError, "differentiable=True"),
        (lambda ps: tkt.SGD(ps, lr=0.1, nesterov=True), ValueError, "Nesterov"),
        (lambda ps: tkt.SGD(ps, momentum=-1.0), ValueError, "momentum"),
        (lambda ps: tkt.Adam([{"params": ps}, {"params": [torch.nn.Parameter(torch.randn(2))],
                                               "lr": -1.0}]), ValueError, "learning rate"),
    ],
)
def test_hyper_parameters_are_validated(make, exc, match):
    with pytest.raises(exc, match=match):
        make([torch.nn.Parameter(torch.randn(3))])


def test_a_bad_group_added_later_leaves_the_optimizer_as_it_was():
    opt = tkt.Adam([torch.nn.Parameter(torch.randn(3))])
    with pytest.raises(ValueError):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.randn(2))], "lr": -1.0})
    assert len(opt.param_groups) == 1


# -- imports ---------------------------------------------------------------------------------


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_importing_trainkern_does_not_import_torch():
    r = run_python("import sys, trainkern, trainkern.optim; "
                   "print('torch' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_trainkern_torch_without_torch_is_a_clear_import_error():
    r = run_python(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('No module named ' + repr(name))\n"
        "sys.meta_path.insert(0, Block())\n"
        "import trainkern, trainkern.optim\n"
        "try:\n"
        "    import trainkern.torch\n"
        "except ImportError as e:\n"
        "    print('ImportError:', e)\n"
    )
    assert r.returncode == 0, r.stderr
    assert "trainkern.torch needs PyTorch" in r.stdout
    assert "pip install torch==2.13.0" in r.stdout


def test_step_numpy_views_share_memory_with_the_state(data):
    model = mlp(torch.float32)
    opt = tkt.Adam(model.parameters())
    train(model, opt, data, 1)
    p = next(model.parameters())
    m = opt.state[p]["exp_avg"]
    before = m.clone()
    train(model, opt, data, 1)
    assert not torch.equal(m, before)  # updated in place, where the state dict points
    assert np.isfinite(m.numpy()).all()
