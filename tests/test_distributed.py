"""trainkern.torch optimizers under torch.distributed: two processes on 127.0.0.1 over gloo,
DistributedDataParallel with trainkern.torch.Adam, and ZeroRedundancyOptimizer with
optimizer_class=trainkern.torch.Adam (also with DDP's and ZeRO's bucket views), against one
process on the same global batch."""

import datetime
import os
import socket
import time
import warnings

import numpy as np
import pytest
from tolerances import assert_close

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

import torch.multiprocessing as mp  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

with warnings.catch_warnings():
    # torch.distributed.optim scripts its functional optimizers with the deprecated
    # torch.jit.script at import (torch's warning, not ours).
    warnings.simplefilter("ignore", DeprecationWarning)
    from torch.distributed.optim import ZeroRedundancyOptimizer

import trainkern  # noqa: E402
import trainkern.torch as tkt  # noqa: E402

WORLD = 2
STEPS = 5
BATCH = 32  # global; each rank takes BATCH / WORLD rows
# Emulated runs (scripts/qemu_tests.sh) start torch in each rank far more slowly.
DEADLINE_S = float(os.environ.get("TRAINKERN_TEST_DEADLINE_S", "90"))


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(12, 24), torch.nn.Tanh(), torch.nn.Linear(24, 16), torch.nn.Tanh(),
        torch.nn.Linear(16, 4),
    ).to(torch.float64)


def batches():
    g = torch.Generator().manual_seed(7)
    return [(torch.randn(BATCH, 12, generator=g, dtype=torch.float64),
             torch.randint(0, 4, (BATCH,), generator=g)) for _ in range(STEPS)]


def fit(net, opt, data):
    for x, y in data:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in net.parameters()]


def worker(rank, port, out):
    """One rank: DDP + trainkern Adam, then DDP + ZeRO sharding trainkern Adam."""
    torch.set_num_threads(1)
    trainkern.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
        timeout=datetime.timedelta(seconds=DEADLINE_S),
    )
    try:
        rows = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        local = [(x[rows], y[rows]) for x, y in batches()]

        ddp = DistributedDataParallel(model())
        ddp_params = fit(ddp, tkt.Adam(ddp.parameters(), lr=1e-2), local)

        ddp = DistributedDataParallel(model())
        zero = ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=tkt.Adam, lr=1e-2,
                                       weight_decay=0.01)
        zero_params = fit(ddp, zero, local)
        # Each rank steps only its shard; this rank's local optimizer must hold state for
        # some parameters and not for the others.
        owned = sum(1 for p in ddp.parameters() if p in zero.optim.state)
        zero.consolidate_state_dict(to=0)
        state = zero.state_dict() if rank == 0 else None

        # Gradients as views of DDP's buckets and parameters as views of ZeRO's buckets:
        # the storage under the optimizer's cached views is swapped after construction.
        ddp = DistributedDataParallel(model(), gradient_as_bucket_view=True)
        zero = ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=tkt.Adam, lr=1e-2,
                                       weight_decay=0.01, parameters_as_bucket_view=True)
        bucket_params = fit(ddp, zero, local)
        torch.save({"ddp": ddp_params, "zero": zero_params, "bucket": bucket_params,
                    "owned": owned, "state": state}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(out):
    ctx = mp.start_processes(worker, args=(free_port(), str(out)), nprocs=WORLD, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + DEADLINE_S
    try:
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                pytest.fail(f"the {WORLD} ranks did not finish within {DEADLINE_S} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.terminate()
                p.join(5)


@pytest.fixture
def torch_on_one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_two_ranks_match_one_process_on_the_global_batch(tmp_path, torch_on_one_thread):
    run_ranks(tmp_path)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    data = batches()
    net = model()
    single = fit(net, tkt.Adam(net.parameters(), lr=1e-2), data)
    net = model()
    single_wd = fit(net, tkt.Adam(net.parameters(), lr=1e-2, weight_decay=0.01), data)
    # The reference itself against torch.optim, so that "equal" means torch's semantics.
    net = model()
    torch_single = fit(net, torch.optim.Adam(net.parameters(), lr=1e-2), data)
    for a, b in zip(single, torch_single):
        assert ((a - b).norm() / b.norm()).item() < 1e-12

    for r, res in enumerate(results):
        for i, (a, b) in enumerate(zip(res["ddp"], single)):
            assert_close(a.numpy(), b.numpy(), "distributed", np.float64,
                         err_msg=f"DDP rank {r} parameter {i}")
        for i, (a, b) in enumerate(zip(res["zero"], single_wd)):
            assert_close(a.numpy(), b.numpy(), "distributed", np.float64,
                         err_msg=f"ZeRO rank {r} parameter {i}")
        for i, (a, b) in enumerate(zip(res["bucket"], single_wd)):
            assert_close(a.numpy(), b.numpy(), "distributed", np.float64,
                         err_msg=f"ZeRO with bucket views, rank {r} parameter {i}")
    # The optimizer state was sharded, and the consolidated state is torch.optim's.
    owned = [res["owned"] for res in results]
    assert all(n > 0 for n in owned) and sum(owned) == len(single)
    state = results[0]["state"]["state"]
    assert sorted(state) == list(range(len(single)))
    assert all(float(s["step"]) == STEPS for s in state.values())
    assert set(state[0]) == {"step", "exp_avg", "exp_avg_sq"}
