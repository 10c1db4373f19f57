// Softmax cross-entropy and MSE, loss and gradient in one call, compiled per target.
//
// Cross-entropy works row by row (rows spread over threads). A row is read from memory once:
// a max sweep brings it into cache, an exp sweep writes e_j = exp(x_j - max) into the
// gradient row (still in cache), and a scaling sweep turns e_j into the gradient. The loss
// needs no cancelling subtraction: with class-index labels, lse - x_y = log1p(others / e_y),
// others = sum of e_j over j != y, summed without the target lane; the target's gradient is
// -others / d rather than p_y - 1. Up to kCeSmallC classes, rows go across vector lanes
// instead (ops/ce_small-inl.h), with the same formulas.
#include <cmath>
#include <cstdint>

#include "ops/losses.h"
#include "parallel.h"

namespace tk {
namespace TK_NS {
namespace loss_detail {

// Lane indices, for masks of partial vectors and of the target lane.
template <class T>
inline typename Simd<T>::V iota() {
  alignas(64) static const T lanes[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  return Simd<T>::loadu(lanes);
}

// What a row's loss needs besides logs, which are taken for a block of rows at once.
template <class T>
struct CeRow {
  T d, others, e_y, m_minus_xy, m_minus_mean;
};

template <class T>
struct CeArgs {
  const T* logits;
  const int64_t* labels;
  const T* probs;
  int64_t n_cls;
  double* row_loss;
  T* grad;
  double scale, eps;
  int64_t ignore;
};

// max over x[0, c); NaN may be lost here but comes back through exp(x - m).
template <class T>
inline T row_max(const T* x, int64_t c, typename Simd<T>::V* sum_x, bool want_sum) {
  using S = Simd<T>;
  constexpr int64_t N = S::N;
  const auto ninf = S::set1(-INFINITY);
  auto vm = ninf, vs = S::zero();
  int64_t i = 0;
  for (; i + N <= c; i += N) {
    const auto v = S::loadu(x + i);
    vm = S::max(vm, v);
    if (want_sum) vs = S::add(vs, v);
  }
  if (i < c) {
    const auto k = static_cast<size_t>(c - i);
    const auto v = S::load_partial(x + i, k);
    vm = S::max(vm, S::select(S::lt(iota<T>(), S::set1(T(c - i))), v, ninf));
    if (want_sum) vs = S::add(vs, v);
  }
  *sum_x = vs;
  return S::reduce_max(vm);
}

// Class-index row: d = sum e_j, others = sum over j != y, e_y.
template <class T>
CeRow<T> ce_index_row(const T* x, T* g, int64_t c, int64_t y, bool smoothing) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t N = S::N;
  const T x_y = x[y];  // before g (possibly x itself) is written
  V sum_x;
  const T m = row_max(x, c, &sum_x, smoothing);
  const auto vm = S::set1(m);
  auto acc = S::zero();
  T e_y = 0;
  int64_t i = 0;
  auto step = [&](V v, int64_t at, size_t k, bool full) {
    auto e = vexp<T>(S::sub(v, vm));
    if (!full) e = S::select(S::lt(iota<T>(), S::set1(T(k))), e, S::zero());
    if (g != nullptr) {
      if (full)
        S::storeu(g + at, e);
      else
        S::store_partial(g + at, e, k);
    }
    if (y >= at && y < at + N) {
      const auto is_y = S::eq(iota<T>(), S::set1(T(y - at)));
      e_y = S::reduce_add(S::select(is_y, e, S::zero()));
      e = S::select(is_y, S::zero(), e);
    }
    acc = S::add(acc, e);
  };
  for (; i + N <= c; i += N) step(S::loadu(x + i), i, N, true);
  if (i < c) step(S::load_partial(x + i, static_cast<size_t>(c - i)), i, static_cast<size_t>(c - i), false);
  const T others = S::reduce_add(acc);
  const T mean_x = smoothing ? S::reduce_add(sum_x) / static_cast<T>(c) : T(0);
  return {others + e_y, others, e_y, m - x_y, m - mean_x};
}

// g = e * s + c0 over the row (c0 = -scale eps / C), then the target column from -others / d
// (t_y = scale eps (1 - 1/C), fixed per call).
template <class T>
void ce_index_grad(T* g, int64_t c, int64_t y, const CeRow<T>& row, double scale, T c0, double t_y) {
  using S = Simd<T>;
  constexpr int64_t N = S::N;
  const double s = scale / static_cast<double>(row.d);
  const auto vs = S::set1(static_cast<T>(s)), vc = S::set1(c0);
  int64_t i = 0;
  for (; i + N <= c; i += N) S::storeu(g + i, S::fmadd(S::loadu(g + i), vs, vc));
  if (i < c) {
    const auto k = static_cast<size_t>(c - i);
    S::store_partial(g + i, S::fmadd(S::load_partial(g + i, k), vs, vc), k);
  }
  g[y] = static_cast<T>(t_y - static_cast<double>(row.others) * s);
}

// Probability row: t' = (1 - eps) t + eps / C; loss = sum t' (m - x) + (sum t') log d;
// gradient sum(t') e / d - t'.
template <class T>
CeRow<T> ce_prob_row(const T* x, const T* t, T* g, int64_t c, double eps, double scale) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t N = S::N;
  V unused;
  const T m = row_max(x, c, &unused, false);
  const auto vm = S::set1(m);
  const auto a = S::set1(static_cast<T>(1.0 - eps));
  const auto b = S::set1(static_cast<T>(eps / static_cast<double>(c)));
  auto vd = S::zero(), vt = S::zero(), va = S::zero();
  auto step = [&](V v, V tv, int64_t at, size_t k, bool full) {
    auto e = vexp<T>(S::sub(v, vm));
    auto tp = S::fmadd(tv, a, b);
    if (!full) {
      const auto in = S::lt(iota<T>(), S::set1(T(k)));
      e = S::select(in, e, S::zero());
      tp = S::select(in, tp, S::zero());
    }
    if (g != nullptr) {
      if (full)
        S::storeu(g + at, e);
      else
        S::store_partial(g + at, e, k);
    }
    vd = S::add(vd, e);
    vt = S::add(vt, tp);
    va = S::fmadd(tp, S::sub(vm, v), va);
  };
  int64_t i = 0;
  for (; i + N <= c; i += N) step(S::loadu(x + i), S::loadu(t + i), i, N, true);
  if (i < c) {
    const auto k = static_cast<size_t>(c - i);
    step(S::load_partial(x + i, k), S::load_partial(t + i, k), i, k, false);
  }
  // loss = va + st log d, with the log taken later: {d, va, st} in the CeRow slots
  const T d = S::reduce_add(vd), st = S::reduce_add(vt);
  const CeRow<T> row{d, S::reduce_add(va), st, T(0), T(0)};
  if (g == nullptr) return row;
  const auto s = S::set1(static_cast<T>(scale * static_cast<double>(st) / static_cast<double>(d)));
  const auto sa = S::set1(static_cast<T>(scale * (1.0 - eps)));
  const auto sb = S::set1(static_cast<T>(scale * eps / static_cast<double>(c)));
  for (i = 0; i + N <= c; i += N)
    S::storeu(g + i, S::fmsub(S::loadu(g + i), s, S::fmadd(S::loadu(t + i), sa, sb)));
  if (i < c) {
    const auto k = static_cast<size_t>(c - i);
    const auto tt = S::fmadd(S::load_partial(t + i, k), sa, sb);
    S::store_partial(g + i, S::fmsub(S::load_partial(g + i, k), s, tt), k);
  }
  return row;
}

// Row losses of n <= kCeLossRows rows from per-row sums (one array per field), the logs
// taken a vector at a time. Index labels: (1 - eps) nll + eps (m - mean x + log d), with
// nll = m - x_y + log d and log d = log1p(others + (e_y - 1)). Where y is the row's maximum,
// e_y = 1 and that is log1p(others) with others exact, however small (p_y ~ 1); elsewhere both
// terms are positive and d >= 1 + e_y, so neither cancels. Probabilities (with va in `others`
// and st in `e_y`): va + st log d. Ignored rows (lab[r] < 0): 0.
constexpr int64_t kCeLossRows = 128;

template <class T>
void ce_losses(const T* d, const T* others, const T* e_y, const T* m_xy, const T* m_mean,
               const T* lab, int64_t n, bool probs, double eps, double* out) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t N = S::N;
  T loss[kCeLossRows];
  const auto ve = S::set1(static_cast<T>(eps)), vone = S::set1(T(1));
  for (int64_t i = 0; i < n; i += N) {
    const auto k = static_cast<size_t>(n - i < N ? n - i : N);
    auto ld = [&](const T* p) { return S::load_partial(p + i, k); };
    V l;
    if (probs) {
      l = S::fmadd(ld(e_y), vlog<T>(ld(d)), ld(others));
    } else {
      const V logd = vlog1p<T>(S::add(ld(others), S::sub(ld(e_y), vone)));
      l = S::add(ld(m_xy), logd);
      if (eps != 0.0) l = S::fmadd(S::sub(vone, ve), l, S::mul(ve, S::add(ld(m_mean), logd)));
    }
    S::store_partial(loss + i, S::select(S::ge(ld(lab), S::zero()), l, S::zero()), k);
  }
  for (int64_t r = 0; r < n; ++r) out[r] = static_cast<double>(loss[r]);
}

template <class T>
void ce_block_losses(const CeRow<T>* rows, const bool* skip, int64_t n, bool probs, double eps,
                     double* out) {
  T d[kCeLossRows], a[kCeLossRows], b[kCeLossRows], c[kCeLossRows], e[kCeLossRows];
  T keep[kCeLossRows];
  for (int64_t r = 0; r < n; ++r) {
    d[r] = rows[r].d;
    a[r] = rows[r].others;
    b[r] = rows[r].e_y;
    c[r] = rows[r].m_minus_xy;
    e[r] = rows[r].m_minus_mean;
    keep[r] = skip[r] ? T(-1) : T(0);
  }
  ce_losses(d, a, b, c, e, keep, n, probs, eps, out);
}

template <class T>
void ce_rows(const CeArgs<T>& a, int64_t r0, int64_t r1) {
  constexpr int64_t kBlock = 64;
  const int64_t c = a.n_cls;
  const bool probs = a.probs != nullptr;
  const T c0 = static_cast<T>(-a.scale * a.eps / static_cast<double>(c));
  const double t_y = a.scale * a.eps * (1.0 - 1.0 / static_cast<double>(c));
  CeRow<T> rows[kBlock];
  bool skip[kBlock];
  for (int64_t b0 = r0; b0 < r1; b0 += kBlock) {
    const int64_t b1 = b0 + kBlock < r1 ? b0 + kBlock : r1;
    for (int64_t r = b0; r < b1; ++r) {
      const T* x = a.logits + r * c;
      T* g = a.grad != nullptr ? a.grad + r * c : nullptr;
      CeRow<T>& row = rows[r - b0];
      skip[r - b0] = false;
      if (probs) {
        row = ce_prob_row(x, a.probs + r * c, g, c, a.eps, a.scale);
        continue;
      }
      const int64_t y = a.labels[r];
      if (y == a.ignore) {
        skip[r - b0] = true;
        row = {T(1), T(0), T(1), T(0), T(0)};
        if (g != nullptr)
          for (int64_t j = 0; j < c; ++j) g[j] = T(0);
        continue;
      }
      row = ce_index_row(x, g, c, y, a.eps != 0.0);
      if (g != nullptr) ce_index_grad(g, c, y, row, a.scale, c0, t_y);
    }
    ce_block_losses(rows, skip, b1 - b0, probs, a.eps, a.row_loss + b0);
  }
}

}  // namespace loss_detail
}  // namespace TK_NS
}  // namespace tk

#include "ops/ce_small-inl.h"

namespace tk {
namespace TK_NS {
namespace loss_detail {

template <class T>
void cross_entropy(const T* logits, const int64_t* labels, const T* probs, int64_t n_rows,
                   int64_t n_cls, double* row_loss, T* grad, const CrossEntropyOptions& o) {
  CeArgs<T> a{logits, labels, probs, n_cls, row_loss, grad, 1.0, o.label_smoothing,
              o.ignore_index};
  if (o.reduction == Reduction::mean) {
    const int64_t count = probs != nullptr ? n_rows : o.count;
    a.scale = 1.0 / static_cast<double>(count);  // inf for no counted rows: torch gives NaN
  }
  const int64_t serial_rows = n_rows * n_cls < kLossSerialBelow ? n_rows + 1 : 0;
  if (n_cls <= kCeSmallC)
    parallel_chunks(n_rows, Simd<T>::N, serial_rows,
                    [&](int64_t b, int64_t e) { ce_rows_small(a, b, e); });
  else
    parallel_chunks(n_rows, 1, serial_rows, [&](int64_t b, int64_t e) { ce_rows(a, b, e); });
}

template <class T>
void mse(const T* p, const T* t, int64_t n, Reduction r, double* partial, T* elem_loss,
         T* grad) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t N = S::N;
  const auto gs = S::set1(static_cast<T>(r == Reduction::mean ? 2.0 / static_cast<double>(n) : 2.0));
  parallel_chunks(n, kMseBlock, kLossSerialBelow, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; blk += kMseBlock) {
      const int64_t end = blk + kMseBlock < e ? blk + kMseBlock : e;
      auto step = [&](int64_t i, size_t k, bool full, V& acc) {
        const auto d = full ? S::sub(S::loadu(p + i), S::loadu(t + i))
                            : S::sub(S::load_partial(p + i, k), S::load_partial(t + i, k));
        const auto sq = S::mul(d, d);
        acc = S::add(acc, sq);
        if (full) {
          if (elem_loss != nullptr) S::storeu(elem_loss + i, sq);
          if (grad != nullptr) S::storeu(grad + i, S::mul(gs, d));
        } else {
          if (elem_loss != nullptr) S::store_partial(elem_loss + i, sq, k);
          if (grad != nullptr) S::store_partial(grad + i, S::mul(gs, d), k);
        }
      };
      // The rounding error of a sum grows with its length (up to length * ULP for inputs
      // of one sign and size): each accumulator takes at most 64 vectors before the pair
      // is added into double. A 4096-long float32 sum per lane pair (the scalar target)
      // was off by 2e-5 relative for constant inputs.
      double sum = 0.0;
      for (int64_t i = blk; i < end;) {
        const int64_t stop = i + 128 * N < end ? i + 128 * N : end;
        V acc0 = S::zero(), acc1 = S::zero();
        for (; i + 2 * N <= stop; i += 2 * N) {
          step(i, N, true, acc0);
          step(i + N, N, true, acc1);
        }
        for (; i + N <= stop; i += N) step(i, N, true, acc0);
        if (i < stop) step(i, static_cast<size_t>(stop - i), false, acc1);
        i = stop;
        sum += static_cast<double>(S::reduce_add(S::add(acc0, acc1)));
      }
      partial[blk / kMseBlock] = sum;
    }
  });
}

// One pass without branches, which the compiler vectorises; the first bad row is looked for
// only when there is one.
inline int64_t check_labels(const int64_t* y, int64_t n, int64_t n_cls, int64_t ignore,
                            int64_t* count) {
  int64_t kept = 0, bad = 0;
  for (int64_t r = 0; r < n; ++r) {
    const int64_t keep = y[r] != ignore;
    kept += keep;
    bad |= keep & (static_cast<uint64_t>(y[r]) >= static_cast<uint64_t>(n_cls));
  }
  *count = kept;
  for (int64_t r = 0; bad && r < n; ++r)
    if (y[r] != ignore && (y[r] < 0 || y[r] >= n_cls)) return r;
  return -1;
}

}  // namespace loss_detail

extern const LossTable loss_table = {
    {&loss_detail::cross_entropy<float>, &loss_detail::mse<float>},
    {&loss_detail::cross_entropy<double>, &loss_detail::mse<double>},
    &loss_detail::check_labels,
};

}  // namespace TK_NS
}  // namespace tk
