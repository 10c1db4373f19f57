// Softmax cross-entropy for few classes (C <= kCeSmallC), included by ops/losses-inl.h.
//
// A row of ten classes is too short for the per-row path: its horizontal max and sums cost
// more than the arithmetic. Here N rows go across the lanes instead: the block's rows are
// loaded one by one and transposed in registers (N x N at a time), so that column j of the
// block is one vector, every step is lanewise, and the gradient columns are transposed back
// and stored row by row. Each lane computes its row with the per-row path's formulas, alone,
// so results do not depend on where blocks or threads begin.
#pragma once
#include <cstdint>
#include <type_traits>

namespace tk {
namespace TK_NS {
namespace loss_detail {

constexpr int64_t kCeSmallC = 32;

// The loops over columns below run to a bound known at compile time, KC chunks of N
// columns, and stop at c: with one chunk they unroll, and the block's columns stay in
// registers.

// col[j], lane r = p[r c + j] for rows r < nr (zero beyond), j < c rounded up to N.
template <class T, int64_t KC>
TK_VMATH_INLINE void load_cols(const T* p, int64_t c, int64_t nr, typename Simd<T>::V* col) {
  using S = Simd<T>;
  constexpr int64_t N = S::N;
  for (int64_t q = 0; q < KC * N; q += N) {
    const auto w = static_cast<size_t>(c - q < N ? c - q : N);
    for (int64_t r = 0; r < N; ++r)
      col[q + r] = r < nr ? S::load_partial(p + r * c + q, w) : S::zero();
    S::transpose(col + q);
    if (q + N >= c) break;
  }
}

// The inverse of load_cols: rows r < nr of p from col[j], j < c. Where partial stores are
// dear, rows store whole vectors as long as these end inside the block: the excess lands in
// the following rows' columns, which are written after (rows go in order, the last chunk of
// columns first). Nothing outside the block's rows is written.
template <class T, int64_t KC>
TK_VMATH_INLINE void store_cols(T* p, int64_t c, int64_t nr, typename Simd<T>::V* col) {
  using S = Simd<T>;
  constexpr int64_t N = S::N;
  for (int64_t q = (KC - 1) * N; q >= 0; q -= N) {
    if (q >= c) continue;
    const auto w = static_cast<size_t>(c - q < N ? c - q : N);
    S::transpose(col + q);
    int64_t r = 0;
    if (!S::cheap_partial_store)
      for (; r < nr && r * c + q + N <= nr * c; ++r) S::storeu(p + r * c + q, col[q + r]);
    for (; r < nr; ++r) S::store_partial(p + r * c + q, col[q + r], w);
  }
}

// exp(y) for y <= 0 or NaN (arguments x - max). In float, y - n ln2 in one step: its
// relative error, |n| 1.9e-9, stays under an ULP while |n| < 60, i.e. for terms above 1e-18
// of the row's largest (1); smaller terms no longer move the sums.
template <class T>
TK_VMATH_INLINE typename Simd<T>::V exp_nonpos(typename Simd<T>::V y) {
  using S = Simd<T>;
  using C = VmathCoef<T>;
  y = vmath_detail::clamp_exp_lo<T>(y);
  if constexpr (std::is_same<T, float>::value) {
    const auto n = S::round(S::mul(y, S::set1(C::log2e)));
    const auto r = S::fnmadd(n, S::set1(C::ln2_hi), y);
    auto p = vmath_detail::poly<T>(r, C::exp_p);
    p = S::fmadd(p, r, S::set1(T(1)));
    return S::ldexp(S::fmadd(p, r, S::set1(T(1))), n);
  } else {
    const auto e = vmath_detail::exp_parts<T, false>(y, S::zero());
    return S::ldexp(e.p, e.n);
  }
}

// Per-call constants of ce_block_small.
template <class T>
struct CeSmallK {
  using V = typename Simd<T>::V;
  // index labels: the gradient e s + c0, the target's t_y - others s (see ce_index_grad)
  V scale, c0, t_y;
  // probability labels: t' = t pa + pb, the gradient e s - (t sa + sb)
  V pa, pb, sa, sb;
  // column indices as values of T, to compare class indices with
  T idx[kCeSmallC];
};

// Rows of a superblock: class indices as values of T (exact: they are below kCeSmallC),
// -1 for ignored rows; then what their losses need (ce_losses), filled block by block and
// turned into losses at the end, off the blocks' critical path.
template <class T>
struct CeSmallRows {
  alignas(64) T lab[kCeLossRows];
  alignas(64) T d[kCeLossRows];
  alignas(64) T others[kCeLossRows];
  alignas(64) T e_y[kCeLossRows];
  alignas(64) T m_xy[kCeLossRows];
  alignas(64) T m_mean[kCeLossRows];
};

// Rows [b, b + nr) (nr == N when Full), at offset o of the superblock u; c <= KC N.
template <class T, bool Full, int64_t KC>
TK_VMATH_INLINE void ce_block_small(const CeArgs<T>& a, const CeSmallK<T>& k, int64_t b,
                                    int64_t nr, CeSmallRows<T>& u, int64_t o) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t N = S::N;
  constexpr int64_t kCols = KC * N;
  if (Full) nr = N;
  const int64_t c = a.n_cls;
  const V zero = S::zero();
  V x[kCols];
  load_cols<T, KC>(a.logits + b * c, c, nr, x);
  // two chains of maxima and of sums: half the latency of one
  V m = x[0], m1 = x[0];
  for (int64_t j = 1; j < kCols; ++j) {
    if (j >= c) break;
    if (j % 2 == 0)
      m = S::max(m, x[j]);
    else
      m1 = S::max(m1, x[j]);
  }
  m = S::max(m, m1);
  if (a.probs != nullptr) {
    V t[kCols];
    load_cols<T, KC>(a.probs + b * c, c, nr, t);
    V vd = zero, vt = zero, va = zero;
    for (int64_t j = 0; j < kCols; ++j) {
      if (j >= c) break;
      const V e = exp_nonpos<T>(S::sub(x[j], m));
      const V tp = S::fmadd(t[j], k.pa, k.pb);
      vd = S::add(vd, e);
      vt = S::add(vt, tp);
      va = S::fmadd(tp, S::sub(m, x[j]), va);
      x[j] = e;
    }
    S::storeu(u.d + o, vd);
    S::storeu(u.others + o, va);
    S::storeu(u.e_y + o, vt);
    if (a.grad != nullptr) {
      const V s = S::div(S::mul(k.scale, vt), vd);
      for (int64_t j = 0; j < kCols; ++j) {
        if (j >= c) break;
        x[j] = S::fmsub(x[j], s, S::fmadd(t[j], k.sa, k.sb));
      }
      store_cols<T, KC>(a.grad + b * c, c, nr, x);
    }
    return;
  }
  const V vy = S::loadu(u.lab + o);
  const auto valid = S::ge(vy, zero);
  if (a.eps != 0.0) {
    V sum_x = x[0];
    for (int64_t j = 1; j < kCols; ++j) {
      if (j >= c) break;
      sum_x = S::add(sum_x, x[j]);
    }
    S::storeu(u.m_mean + o, S::sub(m, S::div(sum_x, S::set1(static_cast<T>(c)))));
  }
  // others = sum of e_j over j != y, without the target (no cancellation); e_y by itself
  V others = zero, others1 = zero, e_y = zero, x_y = zero;
  for (int64_t j = 0; j < kCols; ++j) {
    if (j >= c) break;
    const V e = exp_nonpos<T>(S::sub(x[j], m));
    const auto is_y = S::eq(vy, S::set1(k.idx[j]));
    if (j % 2 == 0)
      others = S::select(is_y, others, S::add(others, e));
    else
      others1 = S::select(is_y, others1, S::add(others1, e));
    e_y = S::select(is_y, e, e_y);
    x_y = S::select(is_y, x[j], x_y);
    x[j] = e;
  }
  others = S::add(others, others1);
  const V d = S::add(others, e_y);
  S::storeu(u.d + o, d);
  S::storeu(u.others + o, others);
  S::storeu(u.e_y + o, e_y);
  S::storeu(u.m_xy + o, S::sub(m, x_y));
  if (a.grad == nullptr) return;
  // e s + c0 (0 in ignored rows), the target's t_y - others s
  const V s = S::select(valid, S::div(k.scale, d), zero);
  const V c0 = S::select(valid, k.c0, zero);
  const V g_y = S::fnmadd(others, s, k.t_y);
  // e is NaN where an ignored row holds NaN or infinities; its gradient is still 0
  const bool any_ignored = S::any(S::mask_not(valid));
  for (int64_t j = 0; j < kCols; ++j) {
    if (j >= c) break;
    x[j] = S::select(S::eq(vy, S::set1(k.idx[j])), g_y, S::fmadd(x[j], s, c0));
    if (any_ignored) x[j] = S::select(valid, x[j], zero);
  }
  store_cols<T, KC>(a.grad + b * c, c, nr, x);
}

// The blocks of rows [s0, s1), a superblock.
template <class T, int64_t KC>
void ce_blocks_small(const CeArgs<T>& a, const CeSmallK<T>& k, int64_t s0, int64_t s1,
                     CeSmallRows<T>& u) {
  constexpr int64_t N = Simd<T>::N;
  int64_t b = s0;
  for (; b + N <= s1; b += N) ce_block_small<T, true, KC>(a, k, b, N, u, b - s0);
  if (b < s1) ce_block_small<T, false, KC>(a, k, b, s1 - b, u, b - s0);
}

template <class T>
void ce_rows_small(const CeArgs<T>& a, int64_t r0, int64_t r1) {
  constexpr int64_t N = Simd<T>::N;
  constexpr int64_t kSuper = kCeLossRows;
  static_assert(kSuper % N == 0, "a superblock holds whole blocks");
  const double eps = a.eps, dc = static_cast<double>(a.n_cls);
  const auto v = [](double d) { return Simd<T>::set1(static_cast<T>(d)); };
  CeSmallK<T> k{v(a.scale),
                v(-a.scale * eps / dc),
                v(a.scale * eps * (1.0 - 1.0 / dc)),
                v(1.0 - eps),
                v(eps / dc),
                v(a.scale * (1.0 - eps)),
                v(a.scale * eps / dc),
                {}};
  for (int64_t j = 0; j < kCeSmallC; ++j) k.idx[j] = static_cast<T>(j);
  CeSmallRows<T> u;
  const bool probs = a.probs != nullptr;
  for (int64_t s0 = r0; s0 < r1; s0 += kSuper) {
    const int64_t s1 = s0 + kSuper < r1 ? s0 + kSuper : r1;
    // Labels as vectors of T, ahead of the blocks: a vector load right after its lanes were
    // stored one by one would wait for the stores.
    const int64_t n = s1 - s0;
    if (probs) {
      for (int64_t r = 0; r < n; ++r) u.lab[r] = T(0);
    } else {
      const int64_t* y = a.labels + s0;
      for (int64_t r = 0; r < n; ++r) u.lab[r] = y[r] == a.ignore ? T(-1) : static_cast<T>(y[r]);
    }
    for (int64_t r = n; r < kSuper; ++r) u.lab[r] = T(-1);
    // one or two chunks of columns have their own unrolled code
    if (a.n_cls <= N)
      ce_blocks_small<T, 1>(a, k, s0, s1, u);
    else if (a.n_cls <= 2 * N)
      ce_blocks_small<T, 2>(a, k, s0, s1, u);
    else
      ce_blocks_small<T, (kCeSmallC + N - 1) / N>(a, k, s0, s1, u);
    ce_losses(u.d, u.others, u.e_y, u.m_xy, u.m_mean, u.lab, s1 - s0, probs, eps,
              a.row_loss + s0);
  }
}

}  // namespace loss_detail
}  // namespace TK_NS
}  // namespace tk
