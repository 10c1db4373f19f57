"""More than 2**31 elements (opt in: -m large; ~9 GiB of memory each): 64-bit indexing through
the bindings, the thread split and the vector loops, checked at the int32 boundary and at
the far end (an odd tail, so the last elements go through the masked path)."""

import numpy as np
import pytest

import trainkern

N = 2**31 + 4099
MARKS = np.array([0, 2**31 - 1, 2**31, 2**31 + 1, N - 65, N - 2, N - 1])

pytestmark = pytest.mark.large


def _available_gib():
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
    except OSError:
        return 0.0
    return int(info["MemAvailable"].split()[0]) / 2**20


def _need(gib):
    if _available_gib() < gib:
        pytest.skip(f"needs {gib} GiB of free memory, {_available_gib():.1f} available")


def test_relu_in_place_past_2_31_elements(threads):
    _need(10)
    trainkern.set_num_threads(2)
    x = np.zeros(N, np.float32)  # zero pages until written
    x[MARKS] = [-1, 2, -3, 4, -5, 6, -7]
    assert trainkern.relu(x, out=x) is x
    np.testing.assert_array_equal(x[MARKS], [0, 2, 0, 4, 0, 6, 0])
    assert np.count_nonzero(x) == 3  # nothing else written but zeros


def test_sgd_step_past_2_31_elements(threads):
    """param is written everywhere (8.6 GB); grad is only read, so its untouched pages stay
    the shared zero page."""
    _need(10)
    trainkern.set_num_threads(2)
    param = np.zeros(N, np.float32)
    grad = np.zeros(N, np.float32)
    param[MARKS] = 1.0
    grad[MARKS] = np.arange(1, len(MARKS) + 1, dtype=np.float32)
    trainkern.sgd_step(param, grad, lr=0.5)
    np.testing.assert_array_equal(param[MARKS], 1.0 - 0.5 * grad[MARKS])
    assert np.count_nonzero(param) == np.count_nonzero(1.0 - 0.5 * grad[MARKS])
