"""Shared benchmark plumbing: thread control and a roofline summary after the run.

Each benchmark puts `bytes` (memory traffic) or `flops` in `benchmark.extra_info`; a
benchmark whose extra_info has `roof=True` measures the machine's bound for its group.
The summary prints GB/s or GFLOP/s from the median time and the ratio to the roof and to
the other implementations of the same group.
"""

import time

import pytest

import trainkern


@pytest.fixture
def set_threads():
    """Call with n: trainkern and (if imported) torch use n threads for this benchmark."""
    torch_before = None

    def apply(n):
        nonlocal torch_before
        trainkern.set_num_threads(n)
        if n > 1:
            # The previous benchmark's worker threads (OpenBLAS's, torch's, trainkern's) spin
            # for a while after its last call; timed meanwhile, a team shares the cores.
            time.sleep(0.3)
        try:
            import torch

            if torch_before is None:
                torch_before = torch.get_num_threads()
            torch.set_num_threads(n)
        except ImportError:
            pass

    yield apply
    trainkern._core._reset_num_threads()
    if torch_before is not None:
        import torch

        torch.set_num_threads(torch_before)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups = {}
    for b in session.benchmarks:
        if b.stats is None:
            continue
        groups.setdefault(b.group, []).append(b)
    tr = terminalreporter
    tr.section("trainkern roofline summary (medians)")
    tr.write_line(f"{'group':<28} {'name':<34} {'median':>11} {'rate':>13} {'of roof':>8} "
                  f"{'tk speed-up':>11}")
    for group, items in groups.items():
        roof = next((b for b in items if b.extra_info.get("roof")), None)
        tk = next((b for b in items if b.extra_info.get("impl") == "trainkern"), None)
        for b in items:
            med = b.stats.median
            info = b.extra_info
            if "flops" in info:
                rate, unit = info["flops"] / med / 1e9, "GFLOP/s"
            elif "bytes" in info:
                rate, unit = info["bytes"] / med / 1e9, "GB/s"
            else:
                rate, unit = float("nan"), ""
            of_roof = ""
            if roof is not None and roof is not b:
                key = "flops" if "flops" in info else "bytes"
                roof_rate = roof.extra_info[key] / roof.stats.median
                of_roof = f"{100 * info[key] / med / roof_rate:7.1f}%"
            elif info.get("peak_gflops") and "flops" in info:
                # Compute-bound groups: the FMA peak measured in the same run.
                of_roof = f"{100 * rate / info['peak_gflops']:7.1f}%"
            speed = ""
            if tk is not None and b is not tk and not info.get("roof"):
                speed = f"{med / tk.stats.median:10.2f}x"
            name = b.name.split("[")[0].replace("test_", "")
            tr.write_line(f"{(group or '')[:28]:<28} {name[:34]:<34} {med * 1e6:9.1f}us "
                          f"{rate:7.1f} {unit:<5} {of_roof:>8} {speed:>11}")
