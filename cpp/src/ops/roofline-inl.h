// Stream probes compiled per target; they split work exactly as the kernels do.
#include "ops/roofline.h"
#include "parallel.h"

namespace tk {
namespace TK_NS {
namespace roofline_detail {

template <StreamKind K>
void stream_range(float* const* x, int64_t b, int64_t e) {
  using S = Simd<float>;
  using V = S::V;
  constexpr int64_t N = S::N;
  if (K == StreamKind::read) {
    V acc = S::zero();
    for (int64_t i = b; i + N <= e; i += N) acc = S::add(acc, S::loadu(x[0] + i));
    // A store the compiler must keep, so the loads are not optimised away.
    volatile float sink = S::reduce_add(acc);
    (void)sink;
    return;
  }
  const V k = S::set1(0.5f);
  for (int64_t i = b; i + N <= e; i += N) {
    if (K == StreamKind::copy) {
      S::storeu(x[1] + i, S::loadu(x[0] + i));
    } else if (K == StreamKind::triad) {
      S::storeu(x[2] + i, S::add(S::loadu(x[0] + i), S::mul(k, S::loadu(x[1] + i))));
    } else {
      V g = S::loadu(x[1] + i);
      V m = S::add(S::loadu(x[2] + i), g);
      V v = S::add(S::loadu(x[3] + i), S::mul(g, g));
      S::storeu(x[0] + i, S::add(S::loadu(x[0] + i), S::mul(k, m)));
      S::storeu(x[2] + i, m);
      S::storeu(x[3] + i, v);
    }
  }
}

void stream(StreamKind kind, float* const* x, int64_t n) {
  parallel_chunks(n, 64, kOptimSerialBelow, [&](int64_t b, int64_t e) {
    switch (kind) {
      case StreamKind::read:
        return stream_range<StreamKind::read>(x, b, e);
      case StreamKind::copy:
        return stream_range<StreamKind::copy>(x, b, e);
      case StreamKind::triad:
        return stream_range<StreamKind::triad>(x, b, e);
      case StreamKind::adam:
        return stream_range<StreamKind::adam>(x, b, e);
    }
  });
}

// Enough independent chains to cover FMA latency (4) times two pipes, with room to spare.
constexpr int kChains = 12;

template <class T>
double fma_chains(int64_t iters) {
  using S = Simd<T>;
  using V = typename S::V;
  V acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = S::set1(T(k));
  const V a = S::set1(T(0.999999)), b = S::set1(T(1e-6));
  for (int64_t i = 0; i < iters; ++i) {
    for (int k = 0; k < kChains; ++k) {
      // The scalar baseline has no FMA instruction: a multiply and an add are its peak.
      acc[k] = S::N == 1 ? S::add(S::mul(acc[k], a), b) : S::fmadd(acc[k], a, b);
    }
  }
  V sum = acc[0];
  for (int k = 1; k < kChains; ++k) sum = S::add(sum, acc[k]);
  volatile T sink = S::reduce_add(sum);
  (void)sink;
  return 2.0 * static_cast<double>(S::N) * kChains * static_cast<double>(iters);
}

template <class T>
double fma_peak(int64_t iters) {
  const int nt = num_threads();
  double total = 0;
#pragma omp parallel num_threads(nt) reduction(+ : total)
  total += fma_chains<T>(iters);
  return total;
}

}  // namespace roofline_detail

extern const RooflineTable roofline_table = {&roofline_detail::stream,
                                             &roofline_detail::fma_peak<float>,
                                             &roofline_detail::fma_peak<double>};

}  // namespace TK_NS
}  // namespace tk
