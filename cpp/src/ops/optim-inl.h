// Adam/AdamW and SGD bodies, written once and compiled per ISA target (TK_NS).
// One pass over memory: each element of every array is loaded once and stored once.
// The operation order follows torch.optim's single-tensor path so that float32 results
// agree with torch to rounding (see shared/RESEARCH.md, "Adam numerics").
#include "ops/lanes-inl.h"
#include "ops/optim.h"
#include "parallel.h"

namespace tk {
namespace TK_NS {
namespace optim_detail {

template <class T, bool Full, bool Amsgrad>
inline void adam_lanes(const AdamArrays<T>& a, int64_t i, size_t n_tail, const AdamConsts<T>& c) {
  using S = Simd<T>;
  using V = typename S::V;
  const LaneIo<T, Full> io{i, n_tail};
  auto load = [&](const T* p) { return io.load(p); };
  auto store = [&](T* p, V x) { io.store(p, x); };
  V g = load(a.grad);
  V p = load(a.param);
  V m = load(a.exp_avg);
  V v = load(a.exp_avg_sq);
  if (c.scaled) g = S::div(g, S::set1(c.grad_scale));
  if (c.maximize) g = S::neg(g);
  if (c.weight_decay != T(0)) {
    if (c.decoupled)
      p = S::mul(p, S::set1(c.decay));
    else
      g = S::fmadd(p, S::set1(c.weight_decay), g);  // torch's add(alpha=) is one FMA
  }
  m = S::add(m, S::mul(S::set1(c.one_minus_beta1), S::sub(g, m)));  // lerp(m, g, 1 - beta1)
  v = S::add(S::mul(v, S::set1(c.beta2)), S::mul(S::mul(S::set1(c.one_minus_beta2), g), g));
  V vhat = v;
  if (Amsgrad) {
    V vmax = load(a.max_exp_avg_sq);
    // max that keeps a NaN from either side, as torch.maximum does
    vhat = S::select(S::isnan(v), v, S::max(v, vmax));
    store(a.max_exp_avg_sq, vhat);
  }
  // torch divides sqrt(v) by sqrt(bc2); one multiply by the reciprocal instead keeps the
  // kernel at one sqrt and one division per vector, under the memory roof on AVX-512
  // (the result differs by at most an ULP of the denominator).
  V denom = S::add(S::mul(S::sqrt(vhat), S::set1(c.inv_bc2_sqrt)), S::set1(c.eps));
  p = S::add(p, S::mul(S::set1(-c.step_size), S::div(m, denom)));
  store(a.param, p);
  store(a.exp_avg, m);
  store(a.exp_avg_sq, v);
}

template <class T, bool Amsgrad>
void adam_range(const AdamArrays<T>& arrays, int64_t begin, int64_t end,
                const AdamConsts<T>& consts) {
  // Local copies: the float stores below cannot alias them, so the compiler keeps the
  // constants in registers and hoists the flag tests out of the loop.
  const AdamArrays<T> a = arrays;
  const AdamConsts<T> c = consts;
  for_each_lane(
      a.param, begin, end, [&](int64_t i) { adam_lanes<T, true, Amsgrad>(a, i, 0, c); },
      [&](int64_t i, size_t n) { adam_lanes<T, false, Amsgrad>(a, i, n, c); });
}

template <class T>
void adam(const AdamArrays<T>& a, int64_t n, const AdamConsts<T>& c) {
  parallel_chunks(n, 64, kOptimSerialBelow, [&](int64_t b, int64_t e) {
    if (c.amsgrad)
      adam_range<T, true>(a, b, e, c);
    else
      adam_range<T, false>(a, b, e, c);
  });
}

template <class T, bool Full>
inline void sgd_lanes(T* param, const T* grad, T* buf, int64_t i, size_t n_tail,
                      const SgdConsts<T>& c) {
  using S = Simd<T>;
  using V = typename S::V;
  const LaneIo<T, Full> io{i, n_tail};
  auto load = [&](const T* p) { return io.load(p); };
  auto store = [&](T* p, V x) { io.store(p, x); };
  V g = load(grad);
  V p = load(param);
  if (c.maximize) g = S::neg(g);
  // Every `x + alpha * y` is one FMA, as in torch's add(alpha=) kernels.
  if (c.weight_decay != T(0)) g = S::fmadd(p, S::set1(c.weight_decay), g);
  V d = g;
  if (c.has_momentum) {
    V b = g;
    if (!c.first_step)
      b = S::fmadd(g, S::set1(c.one_minus_dampening), S::mul(load(buf), S::set1(c.momentum)));
    store(buf, b);
    d = c.nesterov ? S::fmadd(b, S::set1(c.momentum), g) : b;
  }
  p = S::fmadd(d, S::set1(-c.lr), p);
  store(param, p);
}

template <class T>
void sgd_range(T* param, const T* grad, T* buf, int64_t begin, int64_t end,
               const SgdConsts<T>& consts) {
  const SgdConsts<T> c = consts;  // a local copy the float stores cannot alias
  for_each_lane(
      param, begin, end, [&](int64_t i) { sgd_lanes<T, true>(param, grad, buf, i, 0, c); },
      [&](int64_t i, size_t m) { sgd_lanes<T, false>(param, grad, buf, i, m, c); });
}

template <class T>
void sgd(T* param, const T* grad, T* buf, int64_t n, const SgdConsts<T>& c) {
  parallel_chunks(n, 64, kOptimSerialBelow,
                  [&](int64_t b, int64_t e) { sgd_range(param, grad, buf, b, e, c); });
}

// Multi-tensor steps: the same range bodies, over a batch split by elements. A tensor
// smaller than one vector is a lone masked tail.
template <class T, bool Amsgrad>
void adam_batch(const Batch<AdamItem<T>>& b) {
  parallel_segments(b.offsets, b.count, 64, kOptimSerialBelow,
                    [&](int64_t k, int64_t lo, int64_t hi) {
                      adam_range<T, Amsgrad>(b.items[k].a, lo, hi, *b.items[k].c);
                    });
}

template <class T>
void adam_multi(const Batch<AdamItem<T>>& b, bool amsgrad) {
  if (amsgrad)
    adam_batch<T, true>(b);
  else
    adam_batch<T, false>(b);
}

template <class T>
void sgd_multi(const Batch<SgdItem<T>>& b) {
  parallel_segments(b.offsets, b.count, 64, kOptimSerialBelow,
                    [&](int64_t k, int64_t lo, int64_t hi) {
                      const SgdItem<T>& t = b.items[k];
                      sgd_range(t.param, t.grad, t.buf, lo, hi, *t.c);
                    });
}

}  // namespace optim_detail

extern const OptimTable optim_table = {
    &optim_detail::adam<float>,
    &optim_detail::adam<double>,
    &optim_detail::sgd<float>,
    &optim_detail::sgd<double>,
    &optim_detail::adam_multi<float>,
    &optim_detail::adam_multi<double>,
    &optim_detail::sgd_multi<float>,
    &optim_detail::sgd_multi<double>,
};

}  // namespace TK_NS
}  // namespace tk
