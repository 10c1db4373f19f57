// M == 1: y = act(x·W + bias) as a matrix-vector product that reads W once, at memory
// speed, with no packing. A row-major W is streamed row by row into an L1-resident
// accumulator row (y += x[k]·W[k,:]); a column-major W (a torch weight seen through .T) is
// read column by column as dot products. Each output column is summed in a fixed order, so
// splitting the columns over threads does not change the result.
#pragma once
#include <cstdint>

#include "ops/gemm_micro-inl.h"
#include "parallel.h"

namespace tk {
namespace TK_NS {
namespace gemm_detail {

// The epilogue for `len` finished sums: c = act(acc + bias), pre = acc + bias.
template <class T, LinearAct A>
void epilogue_run(const T* acc, int64_t len, const T* bias, T* pre, T* c) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t L = static_cast<int64_t>(S::N);
  for (int64_t j = 0; j < len; j += L) {
    const size_t t = static_cast<size_t>(len - j < L ? len - j : L);
    const bool whole = t == static_cast<size_t>(L);
    V x = whole ? S::loadu(acc + j) : S::load_partial(acc + j, t);
    if (bias) x = S::add(x, S::loadu(bias + j));
    if (pre) {
      if (whole)
        S::storeu(pre + j, x);
      else
        S::store_partial(pre + j, x, t);
    }
    x = ActFwd<T, A>::apply(x);
    if (whole)
      S::storeu(c + j, x);
    else
      S::store_partial(c + j, x, t);
  }
}

template <class T>
using RunFn = void (*)(const T*, int64_t, const T*, T*, T*);

template <class T>
RunFn<T> pick_run(LinearAct act) {
  switch (act) {
    case LinearAct::relu:
      return &epilogue_run<T, LinearAct::relu>;
    case LinearAct::sigmoid:
      return &epilogue_run<T, LinearAct::sigmoid>;
    case LinearAct::tanh:
      return &epilogue_run<T, LinearAct::tanh>;
    case LinearAct::gelu:
      return &epilogue_run<T, LinearAct::gelu>;
    case LinearAct::gelu_tanh:
      return &epilogue_run<T, LinearAct::gelu_tanh>;
    case LinearAct::silu:
      return &epilogue_run<T, LinearAct::silu>;
    case LinearAct::none:
      break;
  }
  return &epilogue_run<T, LinearAct::none>;
}

// Columns [j0, j0+len) of a row-major W, len at most a quarter of L2: the accumulator (a
// line-aligned scratch row) stays in cache while a few rows of W stream past it (several streams
// keep more reads in flight than one, and each vector of the accumulator is loaded and
// stored once per group). Rows are split only when they are longer than that: reading
// half-rows broke the streams (2048×8192 float ran at 0.63 of the read rate with 16 KiB
// chunks in L1, 0.81 with whole rows accumulated in L2; 4096×11008 at 0.65 and 0.90).
template <class T>
int64_t row_chunk(int64_t l2_bytes) {
  const int64_t bytes = l2_bytes / 4 > 16384 ? l2_bytes / 4 : 16384;
  return bytes / static_cast<int64_t>(sizeof(T)) / 64 * 64;
}
// From memory, rows go 4 at a time, at least kSpreadBytes apart. Measured on Zen 4
// (4096×4096 float, 1 thread, CPU time): 4 or 8 adjacent rows (16 KiB apart) read W at
// 0.78-0.80 of the read stream's rate, 4 rows 128-512 KiB apart at 0.88-0.92, 8 rows
// spread so at 0.78 (a plain read of 4 or 8 adjacent rows is itself ~15% slower than one
// stream). A W that fits in L2 goes 8 adjacent rows at a time: half the accumulator
// traffic, about 8% faster there.
constexpr int64_t kSpreadBytes = 128 << 10;

// acc[0, full + tail) += the R rows first, first + step, ... of W (from w0) times x.
template <class T, int R>
void add_rows(const GemmProblem<T>& P, const T* w0, T* acc, int64_t full, size_t tail,
              int64_t first, int64_t step) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t L = static_cast<int64_t>(S::N);
  V x[R];
  const T* w[R];
#pragma GCC unroll 8
  for (int u = 0; u < R; ++u) {
    x[u] = S::set1(P.a[(first + u * step) * P.a_cs]);
    w[u] = w0 + (first + u * step) * P.b_rs;
  }
  for (int64_t j = 0; j < full; j += L) {
    V s = S::loadu(acc + j);
#pragma GCC unroll 8
    for (int u = 0; u < R; ++u) s = madd<S>(x[u], S::loadu(w[u] + j), s);
    S::storeu(acc + j, s);
  }
  if (tail) {
    V s = S::load_partial(acc + full, tail);
#pragma GCC unroll 8
    for (int u = 0; u < R; ++u) s = madd<S>(x[u], S::load_partial(w[u] + full, tail), s);
    S::store_partial(acc + full, s, tail);
  }
}

template <class T>
void gemv_rows(const GemmProblem<T>& P, const T* bias, RunFn<T> run, int64_t j0, int64_t len,
               T* acc, int64_t l2_bytes) {
  using S = Simd<T>;
  constexpr int64_t L = static_cast<int64_t>(S::N);
  // Whole vectors of W, then one masked vector: nothing past column n is read or written.
  const int64_t full = len / L * L;
  const size_t tail = static_cast<size_t>(len - full);
  for (int64_t j = 0; j < full; j += L) S::storeu(acc + j, S::zero());
  if (tail) S::store_partial(acc + full, S::zero(), tail);
  const T* w0 = P.b + j0;
  const int64_t elem = static_cast<int64_t>(sizeof(T));
  int64_t k = 0;
  if (P.k * len * elem <= l2_bytes / 2) {
    for (; k + 8 <= P.k; k += 8) add_rows<T, 8>(P, w0, acc, full, tail, k, 1);
  } else {
    // Blocks of 4·sp rows, taken as sp groups of 4 rows sp apart.
    const int64_t pitch = P.b_rs * elem;
    const int64_t sp = pitch > 0 ? (kSpreadBytes + pitch - 1) / pitch : 1;
    for (; k + 4 * sp <= P.k; k += 4 * sp)
      for (int64_t r = 0; r < sp; ++r) add_rows<T, 4>(P, w0, acc, full, tail, k + r, sp);
  }
  for (; k + 4 <= P.k; k += 4) add_rows<T, 4>(P, w0, acc, full, tail, k, 1);
  for (; k < P.k; ++k) add_rows<T, 1>(P, w0, acc, full, tail, k, 1);
  run(acc, len, bias ? bias + j0 : nullptr, P.pre ? P.pre + j0 : nullptr, P.c + j0);
}

// Columns [j0, j0+len) of a column-major W as dot products with a contiguous x.
template <class T>
void gemv_cols(const GemmProblem<T>& P, const T* x, const T* bias, RunFn<T> run, int64_t j0,
               int64_t len) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t L = static_cast<int64_t>(S::N);
  constexpr int kG = 4;  // columns summed together: four independent chains per k step
  constexpr int64_t kOut = 64;
  alignas(64) T out[kOut];
  const int64_t K = P.k, full = K / L * L;
  const size_t tail = static_cast<size_t>(K - full);
  for (int64_t c0 = 0; c0 < len; c0 += kOut) {
    const int64_t cn = len - c0 < kOut ? len - c0 : kOut;
    for (int64_t g = 0; g < cn; g += kG) {
      const int gn = static_cast<int>(cn - g < kG ? cn - g : kG);
      const T* col[kG];
      for (int q = 0; q < kG; ++q) col[q] = P.b + (j0 + c0 + g + (q < gn ? q : 0)) * P.b_cs;
      V s[kG];
      for (int q = 0; q < kG; ++q) s[q] = S::zero();
      for (int64_t k = 0; k < full; k += L) {
        const V xv = S::loadu(x + k);
#pragma GCC unroll 4
        for (int q = 0; q < kG; ++q) s[q] = madd<S>(xv, S::loadu(col[q] + k), s[q]);
      }
      if (tail) {
        const V xv = S::load_partial(x + full, tail);
#pragma GCC unroll 4
        for (int q = 0; q < kG; ++q)
          s[q] = madd<S>(xv, S::load_partial(col[q] + full, tail), s[q]);
      }
      // Lanes summed in a fixed order (a plain loop, not a shuffle tree the compiler picks).
      for (int q = 0; q < gn; ++q) {
        T lanes[L];
        S::storeu(lanes, s[q]);
        T t = lanes[0];
        for (int64_t l = 1; l < L; ++l) t += lanes[l];
        out[g + q] = t;
      }
    }
    const int64_t j = j0 + c0;
    run(out, cn, bias ? bias + j : nullptr, P.pre ? P.pre + j : nullptr, P.c + j);
  }
}

// True when the layout of W has a GEMV form; false leaves the problem to the tiled path.
// `x_buf` holds K elements for a strided x when W is column-major; `acc` (64-byte aligned)
// n for the sums of a row-major W.
template <class T>
bool gemv(const GemmProblem<T>& P, const T* bias, T* x_buf, T* acc, int64_t l2_bytes) {
  const bool rows = P.b_cs == 1, cols = P.b_rs == 1 && P.k > 0;
  if (!rows && !cols) return false;
  const RunFn<T> run = pick_run<T>(P.act);
  // A few microseconds of work per thread before a parallel region pays for itself.
  const int64_t serial_cols = (int64_t{1} << 16) / (P.k + 1) + 1;
  if (rows) {
    const int64_t chunk = row_chunk<T>(l2_bytes);
    parallel_chunks(P.n, 64, serial_cols, [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; j += chunk)
        gemv_rows(P, bias, run, j, e - j < chunk ? e - j : chunk, acc + j, l2_bytes);
    });
    return true;
  }
  const T* x = P.a;
  if (P.a_cs != 1) {
    for (int64_t k = 0; k < P.k; ++k) x_buf[k] = P.a[k * P.a_cs];
    x = x_buf;
  }
  parallel_chunks(P.n, 16, serial_cols,
                  [&](int64_t b, int64_t e) { gemv_cols(P, x, bias, run, b, e - b); });
  return true;
}

}  // namespace gemm_detail
}  // namespace TK_NS
}  // namespace tk
