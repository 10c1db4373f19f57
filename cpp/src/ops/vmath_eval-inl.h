// The vmath test hook (ops/vmath.h), compiled per target.
#include "ops/vmath.h"

namespace tk {
namespace TK_NS {
namespace vmath_eval_detail {

// A backward functor at grad_y = 1: the derivative itself, with the same two forms.
template <class F>
struct UnitGrad {
  using S = typename F::S;
  using V = typename F::V;
  static constexpr bool has_central = F::has_central;
  V operator()(V x) const { return F{}(S::set1(1), x); }
  template <class T>
  static bool central_ok(const T* x, int64_t n) { return F::central_ok(x, x, n); }
  static V central(V x) { return F::central(S::set1(1), x); }
};

template <class T, class F>
void map(const T* x, T* y, int64_t n, F f) {
  using S = Simd<T>;
  constexpr int64_t N = S::N;
  int64_t i = 0;
  if constexpr (has_central<F>) {
    // as the activation loops call it, a block at a time, so that both forms are measured
    for (; i + 2 * N <= n; i += 2 * N) {
      const bool c = f.central_ok(x + i, 2 * N);
      for (int64_t j = i; j < i + 2 * N; j += N)
        S::storeu(y + j, c ? f.central(S::loadu(x + j)) : f(S::loadu(x + j)));
    }
  }
  for (; i + N <= n; i += N) S::storeu(y + i, f(S::loadu(x + i)));
  if (i < n) {
    const auto k = static_cast<size_t>(n - i);
    S::store_partial(y + i, f(S::load_partial(x + i, k)), k);
  }
}

template <class T>
void eval(VmathFn fn, const T* x, T* y, int64_t n) {
  using V = typename Simd<T>::V;
  switch (fn) {
    case VmathFn::exp: return map(x, y, n, [](V v) { return vexp<T>(v); });
    case VmathFn::expm1: return map(x, y, n, [](V v) { return vexpm1<T>(v); });
    case VmathFn::erf: return map(x, y, n, [](V v) { return verf<T>(v); });
    case VmathFn::erfc: return map(x, y, n, [](V v) { return verfc<T>(v); });
    case VmathFn::sigmoid: return map(x, y, n, [](V v) { return vsigmoid<T>(v); });
    case VmathFn::tanh: return map(x, y, n, [](V v) { return vtanh<T>(v); });
    case VmathFn::gelu_erf: return map(x, y, n, GeluFwd<T, false>{});
    case VmathFn::gelu_tanh: return map(x, y, n, GeluFwd<T, true>{});
    case VmathFn::silu: return map(x, y, n, [](V v) { return vsilu<T>(v); });
    case VmathFn::gelu_erf_grad: return map(x, y, n, UnitGrad<GeluBwd<T, false>>{});
    case VmathFn::gelu_tanh_grad: return map(x, y, n, UnitGrad<GeluBwd<T, true>>{});
    case VmathFn::silu_grad: return map(x, y, n, [](V v) { return vsilu_grad<T>(v); });
    case VmathFn::log: return map(x, y, n, [](V v) { return vlog<T>(v); });
    case VmathFn::log1p: return map(x, y, n, [](V v) { return vlog1p<T>(v); });
    case VmathFn::count: return;
  }
}

}  // namespace vmath_eval_detail

extern const VmathTable vmath_table = {&vmath_eval_detail::eval<float>,
                                       &vmath_eval_detail::eval<double>};

}  // namespace TK_NS
}  // namespace tk
