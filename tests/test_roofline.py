"""The roofline probe returns positive, plausible figures and caches them."""

import trainkern
from trainkern import _core


def test_roofline_figures_are_plausible(threads):
    # One thread: on a shared 2-core machine a 2-thread region can wait a whole scheduler
    # tick for its second thread, which says nothing about the probe.
    r = trainkern.roofline(threads=(1,), elements=1 << 20, reps=3)
    assert r["isa"] == trainkern.isa()
    assert r["threads"] == [1]
    for stream in ("read", "copy", "triad", "adam"):
        assert 0.5 < r["bandwidth_gbs"][stream][1] < 5000, stream
    for dtype in ("float32", "float64"):
        assert 0.1 < r["peak_gflops"][dtype][1] < 100_000
    assert trainkern.roofline(threads=(1,), elements=1 << 20, reps=3) is r


def test_roofline_default_covers_one_and_all_threads(threads):
    trainkern.set_num_threads(2)
    r = trainkern.roofline(elements=1 << 16, reps=1)
    assert r["threads"] == [1, 2]
    assert all(r["bandwidth_gbs"]["copy"][n] > 0 for n in (1, 2))
    assert trainkern.get_num_threads() == _core.get_num_threads() == 2


def test_vector_targets_have_a_higher_fma_peak_than_scalar(threads):
    trainkern.set_num_threads(1)
    previous = trainkern.isa()
    try:
        peaks = {}
        for name in trainkern.available_isas():
            _core.set_isa(name)
            peaks[name] = _core.peak_gflops(False)
    finally:
        _core.set_isa(previous)
    for name, peak in peaks.items():
        if name != "scalar":
            assert peak > 2 * peaks["scalar"], peaks
