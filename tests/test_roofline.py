"""The roofline probe returns positive, plausible figures and caches them."""

import trainkern
from trainkern import _core


def test_roofline_figures_are_plausible(threads):
    r = trainkern.roofline(elements=1 << 20, reps=2)
    assert r["isa"] == trainkern.isa()
    assert r["threads"] == sorted({1, trainkern.get_num_threads()})
    for stream in ("read", "copy", "triad", "adam"):
        for n in r["threads"]:
            assert 0.5 < r["bandwidth_gbs"][stream][n] < 5000, (stream, n)
    for dtype in ("float32", "float64"):
        for n in r["threads"]:
            assert 0.1 < r["peak_gflops"][dtype][n] < 100_000
    assert trainkern.roofline(elements=1 << 20, reps=2) is r
    assert trainkern.get_num_threads() == _core.get_num_threads()


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
