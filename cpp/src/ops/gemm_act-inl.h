// Activations of the linear layer, through the shared vector math (vmath-inl.h): the
// forward value applied in the GEMM epilogue, and g = grad_y * act'(.) for linear_backward,
// computed once into a contiguous buffer.
#pragma once
#include <cstdint>

#include "ops/gemm.h"
#include "ops/vmath-inl.h"
#include "parallel.h"

namespace tk {
namespace TK_NS {
namespace gemm_detail {

template <class T, LinearAct A>
struct ActFwd;

#define TK_LINEAR_ACT(act, expr)                                      \
  template <class T>                                                  \
  struct ActFwd<T, LinearAct::act> {                                  \
    static typename Simd<T>::V apply(typename Simd<T>::V x) { return expr; } \
  };
TK_LINEAR_ACT(none, x)
TK_LINEAR_ACT(relu, vrelu<T>(x))
TK_LINEAR_ACT(sigmoid, vsigmoid<T>(x))
TK_LINEAR_ACT(tanh, vtanh<T>(x))
TK_LINEAR_ACT(gelu, vgelu_erf<T>(x))
TK_LINEAR_ACT(gelu_tanh, vgelu_tanh<T>(x))
TK_LINEAR_ACT(silu, vsilu<T>(x))
#undef TK_LINEAR_ACT

// g = gy * act'(src) for one vector; `src` is y, or the pre-activation when FromPre.
template <class T, LinearAct A, bool FromPre>
struct ActBwd {
  using S = Simd<T>;
  using V = typename S::V;
  static V apply(V gy, V src) {
    switch (A) {
      case LinearAct::relu:
        // y <= 0 exactly when preact <= 0; the gradient is exactly 0 there (also for an
        // infinite grad_y) and passes through a NaN, as torch's threshold_backward.
        return S::select(S::le(src, S::zero()), S::zero(), gy);
      case LinearAct::sigmoid:
        return S::mul(gy, vsigmoid_grad_y<T>(FromPre ? vsigmoid<T>(src) : src));
      case LinearAct::tanh:
        return S::mul(gy, vtanh_grad_y<T>(FromPre ? vtanh<T>(src) : src));
      case LinearAct::gelu:
        return S::mul(gy, vgelu_erf_grad<T>(src));
      case LinearAct::gelu_tanh:
        return S::mul(gy, vgelu_tanh_grad<T>(src));
      case LinearAct::silu:
        return S::mul(gy, vsilu_grad<T>(src));
      case LinearAct::none:
        break;
    }
    return gy;
  }
};

template <class T, LinearAct A, bool FromPre>
void act_grad_rows(const ActGradArgs<T>& a, int64_t r0, int64_t r1) {
  using S = Simd<T>;
  constexpr int64_t L = static_cast<int64_t>(S::N);
  constexpr int64_t kChunk = 256;
  T gy_buf[kChunk], src_buf[kChunk];
  for (int64_t i = r0; i < r1; ++i) {
    const T* gy_row = a.grad_y + i * a.gy_rs;
    const T* src_row = a.src + i * a.src_rs;
    T* g = a.g + i * a.n;
    for (int64_t j0 = 0; j0 < a.n; j0 += kChunk) {
      const int64_t len = a.n - j0 < kChunk ? a.n - j0 : kChunk;
      // Strided operands are gathered into a small buffer so the math below is one loop.
      const T* gy = gy_row + j0 * a.gy_cs;
      const T* src = src_row + j0 * a.src_cs;
      if (a.gy_cs != 1) {
        for (int64_t j = 0; j < len; ++j) gy_buf[j] = gy[j * a.gy_cs];
        gy = gy_buf;
      }
      if (a.src_cs != 1) {
        for (int64_t j = 0; j < len; ++j) src_buf[j] = src[j * a.src_cs];
        src = src_buf;
      }
      int64_t j = 0;
      for (; j + L <= len; j += L)
        S::storeu(g + j0 + j, ActBwd<T, A, FromPre>::apply(S::loadu(gy + j), S::loadu(src + j)));
      if (j < len) {
        const size_t t = static_cast<size_t>(len - j);
        S::store_partial(g + j0 + j,
                         ActBwd<T, A, FromPre>::apply(S::load_partial(gy + j, t),
                                                      S::load_partial(src + j, t)),
                         t);
      }
    }
  }
}

template <class T, LinearAct A>
void act_grad_as(const ActGradArgs<T>& a) {
  // Rows per thread; small matrices stay on the calling thread.
  const int64_t serial_rows = (int64_t{1} << 15) / a.n + 1;
  parallel_chunks(a.m, 1, serial_rows, [&](int64_t b, int64_t e) {
    if (a.from_preact)
      act_grad_rows<T, A, true>(a, b, e);
    else
      act_grad_rows<T, A, false>(a, b, e);
  });
}

template <class T>
void act_grad(const ActGradArgs<T>& a) {
  if (a.m <= 0 || a.n <= 0) return;
  switch (a.act) {
    case LinearAct::relu:
      return act_grad_as<T, LinearAct::relu>(a);
    case LinearAct::sigmoid:
      return act_grad_as<T, LinearAct::sigmoid>(a);
    case LinearAct::tanh:
      return act_grad_as<T, LinearAct::tanh>(a);
    case LinearAct::gelu:
      return act_grad_as<T, LinearAct::gelu>(a);
    case LinearAct::gelu_tanh:
      return act_grad_as<T, LinearAct::gelu_tanh>(a);
    case LinearAct::silu:
      return act_grad_as<T, LinearAct::silu>(a);
    case LinearAct::none:
      return;  // g is grad_y itself: the caller reads it in place
  }
}

}  // namespace gemm_detail
}  // namespace TK_NS
}  // namespace tk
