// Activations of the linear layer: the forward value applied in the GEMM epilogue, and
// g = grad_y * act'(.) for linear_backward, computed once into a contiguous buffer.
#pragma once
#include <cstdint>

#include "ops/gemm.h"
#include "parallel.h"

namespace tk {
namespace TK_NS {
namespace gemm_detail {

template <class T, Activation A>
struct ActFwd;

template <class T>
struct ActFwd<T, Activation::none> {
  static typename Simd<T>::V apply(typename Simd<T>::V x) { return x; }
};

template <class T>
struct ActFwd<T, Activation::relu> {
  using S = Simd<T>;
  // Compare and select rather than max: a NaN stays NaN, as in torch.
  static typename S::V apply(typename S::V x) { return S::select(S::lt(x, S::zero()), S::zero(), x); }
};

// g = gy * act'(src) for one vector. `src` is y, or the pre-activation when FromPre.
// The y-based forms follow torch's *_backward formulas and operation order.
template <class T, Activation A, bool FromPre>
struct ActBwd;

template <class T, bool FromPre>
struct ActBwd<T, Activation::relu, FromPre> {
  using S = Simd<T>;
  // y <= 0 exactly when preact <= 0; a NaN passes the gradient through, as in torch.
  static typename S::V apply(typename S::V gy, typename S::V src) {
    return S::select(S::le(src, S::zero()), S::zero(), gy);
  }
};

template <class T>
struct ActBwd<T, Activation::sigmoid, false> {
  using S = Simd<T>;
  static typename S::V apply(typename S::V gy, typename S::V y) {
    return S::mul(S::mul(gy, S::sub(S::set1(T(1)), y)), y);
  }
};

template <class T>
struct ActBwd<T, Activation::tanh, false> {
  using S = Simd<T>;
  static typename S::V apply(typename S::V gy, typename S::V y) {
    return S::mul(gy, S::sub(S::set1(T(1)), S::mul(y, y)));
  }
};

template <class T, Activation A, bool FromPre>
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

template <class T>
void act_grad(const ActGradArgs<T>& a) {
  using Fn = void (*)(const ActGradArgs<T>&, int64_t, int64_t);
  Fn fn = nullptr;
  switch (a.act) {
    case Activation::relu:
      fn = a.from_preact ? &act_grad_rows<T, Activation::relu, true>
                         : &act_grad_rows<T, Activation::relu, false>;
      break;
    case Activation::sigmoid:
      fn = &act_grad_rows<T, Activation::sigmoid, false>;
      break;
    case Activation::tanh:
      fn = &act_grad_rows<T, Activation::tanh, false>;
      break;
    default:
      return;
  }
  if (a.m <= 0 || a.n <= 0) return;
  // Rows per thread; small matrices stay on the calling thread.
  const int64_t serial_rows = (int64_t{1} << 15) / a.n + 1;
  parallel_chunks(a.m, 1, serial_rows, [&](int64_t b, int64_t e) { fn(a, b, e); });
}

}  // namespace gemm_detail
}  // namespace TK_NS
}  // namespace tk
