// Packing of GEMM operands into the micro-panel layouts the register tile reads:
// an A sliver is kc rows of MR contiguous elements (element (r, k) at k*MR + r), a B sliver
// kc rows of NR contiguous elements (element (k, c) at k*NR + c). Edges are zero-padded.
// Any element strides are accepted, so transposed and strided views are read here, once,
// and never copied up front.
#pragma once
#include <cstdint>
#include <cstring>

#include "ops/gemm_micro-inl.h"
#include "ops/gemm_transpose-inl.h"

namespace tk {
namespace TK_NS {
namespace gemm_detail {

// One A sliver: rows [0, mr) of `a` (already offset to the sliver's first element).
template <class T>
void pack_a_sliver(const T* a, int64_t a_rs, int64_t a_cs, int mr, int64_t kc, T* dst) {
  if (a_rs == 1) {
    // Column-major A (a transposed view): each k holds mr contiguous elements, moved as
    // partial vectors (zeros beyond mr).
    using S = Simd<T>;
    constexpr int L = static_cast<int>(S::N);
    for (int64_t k = 0; k < kc; ++k) {
      const T* src = a + k * a_cs;
      T* d = dst + k * kMR;
      for (int r = 0; r < kMR; r += L) {
        const int n = kMR - r < L ? kMR - r : L;
        const int valid = mr - r < 0 ? 0 : (mr - r < n ? mr - r : n);
        const typename S::V x = valid > 0 ? S::load_partial(src + r, static_cast<size_t>(valid))
                                          : S::zero();
        S::store_partial(d + r, x, static_cast<size_t>(n));
      }
    }
    return;
  }
  for (int r = 0; r < mr; ++r) {
    const T* src = a + r * a_rs;
    T* d = dst + r;
    if (a_cs == 1)
      for (int64_t k = 0; k < kc; ++k) d[k * kMR] = src[k];
    else
      for (int64_t k = 0; k < kc; ++k) d[k * kMR] = src[k * a_cs];
  }
  for (int r = mr; r < kMR; ++r)
    for (int64_t k = 0; k < kc; ++k) dst[k * kMR + r] = T(0);
}

// Rows [0, mc) of A (offset to the block's first element) as consecutive slivers.
template <class T>
void pack_a_block(const T* a, int64_t a_rs, int64_t a_cs, int64_t mc, int64_t kc, T* dst) {
  for (int64_t i = 0; i < mc; i += kMR) {
    const int mr = static_cast<int>(mc - i < kMR ? mc - i : kMR);
    pack_a_sliver(a + i * a_rs, a_rs, a_cs, mr, kc, dst + i * kc);
  }
}

// One B sliver: columns [0, nr) of `b` (offset to the sliver's first element). When
// `colsum` is not null, the sums of the sliver's columns over these kc rows, each taken in
// row order, are added to colsum[0..nr): the order is fixed by the blocking alone.
template <class T>
void pack_b_sliver(const T* b, int64_t b_rs, int64_t b_cs, int nr, int64_t kc, T* dst,
                   T* colsum) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int L = static_cast<int>(S::N);
  constexpr int NR = tile_nr<T>();
  if (b_cs == 1) {
    // Row-major B: each k is one contiguous row segment.
    V sum[kNV];
    for (int v = 0; v < kNV; ++v) sum[v] = S::zero();
    for (int64_t k = 0; k < kc; ++k) {
      const T* src = b + k * b_rs;
      T* d = dst + k * NR;
#pragma GCC unroll 8
      for (int v = 0; v < kNV; ++v) {
        const int cnt = nr - v * L;
        const V x = cnt >= L ? S::loadu(src + v * L)
                             : cnt > 0 ? S::load_partial(src + v * L, static_cast<size_t>(cnt))
                                       : S::zero();
        S::storeu(d + v * L, x);
        if (colsum) sum[v] = S::add(sum[v], x);
      }
    }
    if (colsum) {
      for (int v = 0; v < kNV; ++v) {
        const int cnt = nr - v * L;
        if (cnt >= L)
          S::storeu(colsum + v * L, S::add(S::loadu(colsum + v * L), sum[v]));
        else if (cnt > 0)
          S::store_partial(colsum + v * L,
                           S::add(S::load_partial(colsum + v * L, static_cast<size_t>(cnt)), sum[v]),
                           static_cast<size_t>(cnt));
      }
    }
    return;
  }
  if (b_rs == 1 && Transpose<T>::kHas) {
    // Column-major B (the transposed weight of a torch layer): L×L blocks transposed in
    // registers; the column sums then add the packed rows in order, as above.
    V sum[kNV];
    for (int v = 0; v < kNV; ++v) sum[v] = S::zero();
    const int cfull = nr / L * L;
    for (int64_t k0 = 0; k0 < kc; k0 += L) {
      const int64_t k1 = kc - k0 < L ? kc : k0 + L;
      for (int c0 = 0; c0 < cfull && k1 - k0 == L; c0 += L)
        Transpose<T>::block(b + c0 * b_cs + k0, b_cs, dst + k0 * NR + c0, NR);
      for (int64_t k = k0; k < k1; ++k) {
        T* d = dst + k * NR;
        for (int c = k1 - k0 == L ? cfull : 0; c < nr; ++c) d[c] = b[c * b_cs + k];
        for (int c = nr; c < NR; ++c) d[c] = T(0);
        if (colsum)
          for (int v = 0; v < kNV; ++v) sum[v] = S::add(sum[v], S::loadu(d + v * L));
      }
    }
    if (colsum) {
      T s[NR];
      for (int v = 0; v < kNV; ++v) S::storeu(s + v * L, sum[v]);
      for (int c = 0; c < nr; ++c) colsum[c] += s[c];
    }
    return;
  }
  // Any other layout: walk k in short runs so the destination rows being filled stay in L1.
  constexpr int64_t kRun = 16;
  T sums[NR];
  for (int c = 0; c < NR; ++c) sums[c] = T(0);
  for (int64_t k0 = 0; k0 < kc; k0 += kRun) {
    const int64_t k1 = kc - k0 < kRun ? kc : k0 + kRun;
    for (int c = 0; c < nr; ++c) {
      const T* src = b + c * b_cs;
      T s = sums[c];
      for (int64_t k = k0; k < k1; ++k) {
        const T x = src[k * b_rs];
        dst[k * NR + c] = x;
        s += x;
      }
      sums[c] = s;
    }
    for (int c = nr; c < NR; ++c)
      for (int64_t k = k0; k < k1; ++k) dst[k * NR + c] = T(0);
  }
  if (colsum)
    for (int c = 0; c < nr; ++c) colsum[c] += sums[c];
}

// Rows [k0, k1) of a kc-deep panel of a row-major B (`b` at the panel's first element):
// each row is read as one contiguous run and scattered into the slivers. `sums` (nc
// elements), when not null, accumulates each column in row order.
template <class T>
void pack_b_rows(const T* b, int64_t b_rs, int64_t nc, int64_t k0, int64_t k1, int64_t kc,
                 T* dst, T* sums) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int L = static_cast<int>(S::N);
  constexpr int NR = tile_nr<T>();
  const int64_t full = nc / NR * NR;
  const int tail = static_cast<int>(nc - full);
  for (int64_t k = k0; k < k1; ++k) {
    const T* src = b + k * b_rs;
    for (int64_t j = 0; j < full; j += NR) {
      T* d = dst + j * kc + k * NR;
#pragma GCC unroll 8
      for (int v = 0; v < kNV; ++v) {
        const V x = S::loadu(src + j + v * L);
        S::storeu(d + v * L, x);
        if (sums) S::storeu(sums + j + v * L, S::add(S::loadu(sums + j + v * L), x));
      }
    }
    if (tail) {
      T* d = dst + full * kc + k * NR;
      for (int v = 0; v < kNV; ++v) {
        const int cnt = tail - v * L;
        const V x = cnt >= L ? S::loadu(src + full + v * L)
                             : cnt > 0 ? S::load_partial(src + full + v * L, static_cast<size_t>(cnt))
                                       : S::zero();
        S::storeu(d + v * L, x);
        if (sums)
          for (int c = 0; c < (cnt < L ? cnt : L); ++c) sums[full + v * L + c] += d[v * L + c];
      }
    }
  }
}

// kc rows × nc columns of B (offset to the panel's first element) as consecutive slivers.
// A row-major B is copied row by row, so memory sees one contiguous run per row; `sums`
// is nc elements of scratch for the column sums, taken in the order pack_b_sliver takes
// them.
template <class T>
void pack_b_panel(const T* b, int64_t b_rs, int64_t b_cs, int64_t nc, int64_t kc, T* dst,
                  T* colsum, T* sums) {
  constexpr int NR = tile_nr<T>();
  if (b_cs != 1) {
    for (int64_t j = 0; j < nc; j += NR)
      pack_b_sliver(b + j * b_cs, b_rs, b_cs, static_cast<int>(nc - j < NR ? nc - j : NR), kc,
                    dst + j * kc, colsum ? colsum + j : nullptr);
    return;
  }
  if (colsum)
    for (int64_t j = 0; j < nc; ++j) sums[j] = T(0);
  pack_b_rows(b, b_rs, nc, 0, kc, kc, dst, colsum ? sums : nullptr);
  if (colsum)
    for (int64_t j = 0; j < nc; ++j) colsum[j] += sums[j];
}

}  // namespace gemm_detail
}  // namespace TK_NS
}  // namespace tk
