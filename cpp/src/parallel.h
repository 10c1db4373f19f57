// Thread count and the one way kernels split work over OpenMP threads.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace tk {

// set_num_threads(n) if called, else OpenMP's default (OMP_NUM_THREADS, threadpoolctl).
int num_threads();
// n >= 1 pins the count; n == 0 goes back to OpenMP's default.
void set_num_threads(int n);

// Splits [0, n) into one contiguous chunk per thread, with chunk boundaries on multiples
// of `align` elements (a cache line), and calls f(begin, end) for each. Runs inline, with
// no parallel region, when n is below `serial_below` or one thread is configured. Each
// index always lands in the same chunk for a given thread count, and elementwise kernels
// give the same result for any count.
template <class F>
void parallel_chunks(int64_t n, int64_t align, int64_t serial_below, const F& f) {
  if (n <= 0) return;
  const int64_t max_useful = (n + align - 1) / align;
  int nt = static_cast<int>(std::min<int64_t>(num_threads(), max_useful));
  if (n < serial_below || nt <= 1 || omp_in_parallel()) {
    f(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    const int64_t blocks = (n + align - 1) / align;
    const int64_t b0 = blocks * t / T, b1 = blocks * (t + 1) / T;
    const int64_t begin = b0 * align, end = std::min(n, b1 * align);
    if (begin < end) f(begin, end);
  }
}

// Runs f(k, begin, end) over a batch of `count` segments laid end to end, segment k being
// the global index range [offsets[k], offsets[k + 1]) (offsets[0] == 0, non-decreasing);
// begin/end are local to segment k. The total is split as parallel_chunks splits it, so the
// work per thread is balanced whatever the segment sizes: a thread may cover the end of one
// segment and the start of the next, and a large segment may be shared by several threads.
template <class F>
void parallel_segments(const int64_t* offsets, int64_t count, int64_t align,
                       int64_t serial_below, const F& f) {
  if (count <= 0) return;
  parallel_chunks(offsets[count], align, serial_below, [&](int64_t b, int64_t e) {
    // First segment that ends after b (binary search; empty segments are skipped below).
    int64_t lo = 0, hi = count;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (offsets[mid + 1] <= b)
        lo = mid + 1;
      else
        hi = mid;
    }
    for (int64_t k = lo; k < count && offsets[k] < e; ++k) {
      const int64_t s = offsets[k] > b ? offsets[k] : b;
      const int64_t t = offsets[k + 1] < e ? offsets[k + 1] : e;
      if (s < t) f(k, s - offsets[k], t - offsets[k]);
    }
  });
}

}  // namespace tk
