"""Kernels in processes created by fork() after the parent ran parallel regions."""

import os
import time

import numpy as np
import pytest

import trainkern
from trainkern import reference as ref


def _arrays(n):
    rng = np.random.default_rng(3)
    return [rng.standard_normal(n).astype(np.float32) for _ in range(3)] + [np.ones(n, np.float32)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_kernel_in_forked_child_does_not_hang(threads):
    trainkern.set_num_threads(2)
    big = _arrays(1 << 20)
    trainkern.adam_step(*big, step=1)  # the parent has used its OpenMP pool
    expected = [x.copy() for x in big]
    ref.adam_step(*expected, step=2)
    pid = os.fork()
    if pid == 0:  # child: must finish, single-threaded, with the right values
        code = 1
        try:
            trainkern.adam_step(*big, step=2)
            ok = all(np.allclose(a, e, rtol=1e-5, atol=1e-6) for a, e in zip(big, expected))
            code = 0 if ok and trainkern.get_num_threads() == 1 else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("adam_step hung in a forked child")
