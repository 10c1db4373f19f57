"""The machine's roofline as the kernels see it: sustained bandwidth for the stream shapes
the kernels use and the peak FMA throughput of the active target, per thread count."""

from __future__ import annotations

import time

import numpy as np

from . import _core

# name -> (kind code in the extension, arrays it touches, bytes per element)
STREAMS = {
    "read": (0, 1, 4),
    "copy": (1, 2, 8),
    "triad": (2, 3, 12),  # 2 reads, 1 write
    "adam": (3, 4, 28),  # 4 reads, 3 writes
}

_cache: dict = {}


def _best_time(fn, reps):
    """Fastest of `reps` runs: a roof is what the machine can sustain (STREAM's rule),
    and on a shared machine the slower runs measure the neighbours."""
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def roofline(threads=None, *, elements=1 << 24, reps=5, refresh=False) -> dict:
    """Measure (once per target and thread counts; cached) the machine's roofline.

    Returns ``{"isa", "threads", "bandwidth_gbs": {stream: {threads: GB/s}},
    "peak_gflops": {"float32"|"float64": {threads: GFLOP/s}}}``. Streams: ``read``,
    ``copy``, ``triad`` (2 reads, 1 write) and ``adam`` (4 reads, 3 writes), each over
    arrays of ``elements`` float32 (64 MiB each by default, well beyond the L3 cache).
    ``threads`` defaults to 1 and the current thread count.
    """
    current = _core.get_num_threads()
    counts = tuple(sorted(set(threads or (1, current))))
    key = (_core.isa(), counts, elements)
    if key in _cache and not refresh:
        return _cache[key]
    arrays = [np.full(elements, 1.0 + i, np.float32) for i in range(4)]
    result = {"isa": _core.isa(), "threads": list(counts), "bandwidth_gbs": {},
              "peak_gflops": {"float32": {}, "float64": {}}}
    try:
        for n in counts:
            _core.set_num_threads(n)
            for name, (kind, count, nbytes) in STREAMS.items():
                t = _best_time(lambda k=kind, c=count: _core.stream_pass(k, arrays[:c]), reps)
                result["bandwidth_gbs"].setdefault(name, {})[n] = nbytes * elements / t / 1e9
            result["peak_gflops"]["float32"][n] = _core.peak_gflops(False)
            result["peak_gflops"]["float64"][n] = _core.peak_gflops(True)
    finally:
        _core.set_num_threads(current)
    _cache[key] = result
    return result
