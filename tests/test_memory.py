"""No leaks in the bindings: every kernel 10,000 times, the resident set stays put."""

import gc
import os

import kernel_workload
import pytest


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc/self/statm")
def test_every_kernel_10000_times_does_not_grow_the_resident_set():
    todo = kernel_workload.calls()
    refused_per_round = kernel_workload.run(todo, 1)
    kernel_workload.run(todo, 200)  # warm-up: allocator pools, caches, lazy imports
    gc.collect()
    before = _rss_bytes()
    refused = kernel_workload.run(todo, 10_000)
    gc.collect()
    grown = _rss_bytes() - before
    print(f"{10_000 * len(todo)} calls: resident set {before / 2**20:.1f} MiB, "
          f"grew by {grown / 2**10:.0f} KiB")
    assert refused == 10_000 * refused_per_round  # the refused calls were refused each time
    # A leak of one pointer per call would be 8 bytes x len(todo) x 10,000: > 4 MiB.
    assert grown < 2 * 2**20, f"resident set grew by {grown / 2**20:.2f} MiB over " \
                              f"{10_000 * len(todo)} calls"
