"""The benchmark report tools: figures computed right from known inputs, a valid plot."""

import json

import numpy as np
import pytest

import trainkern
from trainkern import _bench, _report


def _known_report():
    return {
        "environment": {"cpu": "test cpu", "isa": "avx2", "threads": 1},
        "results": [
            _bench._row(
                _bench.Case("optim", "adam_step", "1,000 f32", setup=dict, bytes=28_000.0,
                            roof="adam"),
                {"trainkern": 1e-6, "numpy": 4e-6},
                {"bandwidth_gbs": {"adam": {1: 56.0}}},
                threads=1,
            )
        ],
    }


def test_row_figures_from_known_times():
    row = _known_report()["results"][0]
    assert row["rate"]["trainkern"] == pytest.approx(28.0)  # 28 kB in 1 us
    assert row["rate"]["numpy"] == pytest.approx(7.0)
    assert row["pct_of_roof"]["trainkern"] == pytest.approx(50.0)
    assert row["speedup"] == {"numpy": pytest.approx(4.0)}


def test_table_shows_rates_roof_and_speedups():
    text = _report.format_table(_known_report())
    assert "test cpu" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("adam_step"))
    assert "1.0 us" in line and "4.0 us" in line
    assert "28.0 GB/s" in line and "50% adam stream" in line and "4.00x" in line


def test_pytest_benchmark_json_is_converted(tmp_path):
    def bench(name, impl, median, **info):
        return {"group": "adam-f32-1M", "name": name, "stats": {"median": median},
                "extra_info": dict(impl=impl, bytes=28e6, **info)}

    data = {"datetime": "2026-11-28T00:00:00", "machine_info": {"cpu": {"brand_raw": "X"}},
            "benchmarks": [bench("s", "stream", 0.5e-3, roof=True),
                           bench("t", "trainkern", 1e-3), bench("n", "numpy", 10e-3)]}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    report = _report.from_pytest_benchmark(str(path))
    (row,) = report["results"]
    assert row["roof_rate"] == pytest.approx(56.0)
    assert row["rate"]["trainkern"] == pytest.approx(28.0)
    assert row["pct_of_roof"]["trainkern"] == pytest.approx(50.0)
    assert row["speedup"]["numpy"] == pytest.approx(10.0)


def test_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "out.png"
    _report.plot(_known_report(), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_times_a_tiny_case_and_checks_nothing_is_lost(threads):
    x = np.ones(1000, np.float32)
    case = _bench.Case("optim", "sgd_step", "1,000 f32",
                       setup=lambda: {"trainkern": lambda: trainkern.sgd_step(x, x * 0, lr=0.1),
                                      "numpy": lambda: None},
                       bytes=12_000.0, roof="copy")
    out = _bench.run([case], threads=1, quick=True, progress=False)
    (row,) = out["results"]
    assert set(row["seconds"]) == {"trainkern", "numpy"}
    assert row["seconds"]["trainkern"] > 0
    assert row["roof_rate"] == out["roofline"]["bandwidth_gbs"]["copy"][1]
    assert out["environment"]["threads"] == 1


def test_several_threads_time_blocks_after_a_pause():
    # With `settle` each implementation runs a block of calls (min_time / min_reps long)
    # after a pause and one untimed call, so the other runtimes' spinning workers are
    # asleep when it is timed; the medians are still per call.
    import time

    calls = {"fast": 0, "slow": 0}

    def sleeper(name, seconds):
        def fn():
            calls[name] += 1
            time.sleep(seconds)
        return fn

    t0 = time.perf_counter()
    med = _bench.time_calls({"fast": sleeper("fast", 0.001), "slow": sleeper("slow", 0.004)},
                            min_time=0.04, min_reps=2, settle=0.05)
    elapsed = time.perf_counter() - t0
    assert 0.001 <= med["fast"] < 0.004 <= med["slow"] < 0.04
    assert elapsed >= 2 * 2 * 0.05  # a pause before each block of each round
    # blocks of 20 ms (plus the warm-up and one untimed call per block): the faster one makes
    # more calls, where one call of each per round would make them equal
    assert calls["fast"] > 2 * calls["slow"] >= 2 * (2 * 3 + 1)
