// FMA-throughput probe: the compute roof the GEMM benchmarks report against, measured with
// the same vector width and FMA form as the register tile.
#pragma once
#include <cstdint>

#include <omp.h>

#include "ops/gemm_micro-inl.h"

namespace tk {
namespace TK_NS {
namespace gemm_detail {

// Twelve independent chains per thread: more than FMA latency × FMA ports on current x86
// and Arm cores, and few enough for the 16 registers of AVX2.
template <class T>
double fma_probe_chains(int64_t iters) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int kChains = 12;
  V acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = S::set1(T(c));
  const V mul = S::set1(T(0.999999)), add = S::set1(T(1e-6));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = madd<S>(acc[c], mul, add);
  }
  V s = acc[0];
  for (int c = 1; c < kChains; ++c) s = S::add(s, acc[c]);
  // Kept alive through a volatile store so the chains cannot be removed.
  T lanes[S::N];
  S::storeu(lanes, s);
  volatile T sink = lanes[0];
  (void)sink;
  return 2.0 * kChains * static_cast<double>(S::N) * static_cast<double>(iters);
}

template <class T>
double fma_probe(int64_t iters, int threads) {
  double flops = 0;
#pragma omp parallel num_threads(threads) reduction(+ : flops)
  flops += fma_probe_chains<T>(iters);
  return flops;
}

}  // namespace gemm_detail
}  // namespace TK_NS
}  // namespace tk
