// Elementwise activation kernels, forward and backward, compiled per target. One pass:
// each input element is loaded once and each output stored once; large out-of-place outputs
// use streaming stores (they would not survive in cache until the next kernel anyway).
#include <cstdint>

#include "ops/activations.h"
#include "parallel.h"

namespace tk {
namespace TK_NS {
namespace act_detail {

// Elements from y to the next vector boundary, at most n: streaming stores need aligned
// addresses, so a partial vector goes first.
template <class T>
int64_t head_to_boundary(const T* y, int64_t n) {
  constexpr int64_t bytes = Simd<T>::N * static_cast<int64_t>(sizeof(T));
  const auto off = static_cast<int64_t>(reinterpret_cast<uintptr_t>(y) % bytes);
  const int64_t head = off ? (bytes - off) / static_cast<int64_t>(sizeof(T)) : 0;
  return head < n ? head : n;
}

template <class T, bool Stream>
void put(T* p, typename Simd<T>::V v) {
  if (Stream)
    Simd<T>::stream(p, v);
  else
    Simd<T>::storeu(p, v);
}

// y[i] = f(x[i]) over [b, e).
template <class T, bool Stream, class F>
void map1(const T* x, T* y, int64_t b, int64_t e, F f) {
  using S = Simd<T>;
  constexpr int64_t N = S::N;
  int64_t i = b;
  if (Stream) {
    const int64_t head = head_to_boundary(y + i, e - i);
    if (head > 0) {
      const auto k = static_cast<size_t>(head);
      S::store_partial(y + i, f(S::load_partial(x + i, k)), k);
      i += head;
    }
  }
  for (; i + 2 * N <= e; i += 2 * N) {
    const auto a = f(S::loadu(x + i)), c = f(S::loadu(x + i + N));
    put<T, Stream>(y + i, a);
    put<T, Stream>(y + i + N, c);
  }
  for (; i + N <= e; i += N) {
    put<T, Stream>(y + i, f(S::loadu(x + i)));
  }
  if (i < e) {
    const auto k = static_cast<size_t>(e - i);
    S::store_partial(y + i, f(S::load_partial(x + i, k)), k);
  }
  if (Stream) S::stream_fence();
}

// z[i] = f(g[i], v[i]) over [b, e), as map1.
template <class T, bool Stream, class F>
void map2(const T* g, const T* v, T* z, int64_t b, int64_t e, F f) {
  using S = Simd<T>;
  constexpr int64_t N = S::N;
  int64_t i = b;
  if (Stream) {
    const int64_t head = head_to_boundary(z + i, e - i);
    if (head > 0) {
      const auto k = static_cast<size_t>(head);
      S::store_partial(z + i, f(S::load_partial(g + i, k), S::load_partial(v + i, k)), k);
      i += head;
    }
  }
  for (; i + 2 * N <= e; i += 2 * N) {
    const auto a = f(S::loadu(g + i), S::loadu(v + i));
    const auto c = f(S::loadu(g + i + N), S::loadu(v + i + N));
    put<T, Stream>(z + i, a);
    put<T, Stream>(z + i + N, c);
  }
  for (; i + N <= e; i += N) {
    put<T, Stream>(z + i, f(S::loadu(g + i), S::loadu(v + i)));
  }
  if (i < e) {
    const auto k = static_cast<size_t>(e - i);
    S::store_partial(z + i, f(S::load_partial(g + i, k), S::load_partial(v + i, k)), k);
  }
  if (Stream) S::stream_fence();
}

template <class T, class F>
void run1(const T* x, T* y, int64_t n, F f) {
  const bool stream =
      static_cast<const void*>(x) != static_cast<void*>(y) && n * int64_t(sizeof(T)) >= kActStreamBytes;
  parallel_chunks(n, 64, kActSerialBelow, [&](int64_t b, int64_t e) {
    if (stream)
      map1<T, true>(x, y, b, e, f);
    else
      map1<T, false>(x, y, b, e, f);
  });
}

template <class T, class F>
void run2(const T* g, const T* v, T* z, int64_t n, F f) {
  const bool stream = static_cast<const void*>(g) != static_cast<void*>(z) &&
                      static_cast<const void*>(v) != static_cast<void*>(z) &&
                      n * int64_t(sizeof(T)) >= kActStreamBytes;
  parallel_chunks(n, 64, kActSerialBelow, [&](int64_t b, int64_t e) {
    if (stream)
      map2<T, true>(g, v, z, b, e, f);
    else
      map2<T, false>(g, v, z, b, e, f);
  });
}

template <class T>
void forward(Activation act, const T* x, T* y, int64_t n, T slope) {
  using S = Simd<T>;
  using V = typename S::V;
  switch (act) {
    case Activation::relu: return run1(x, y, n, [](V v) { return vrelu<T>(v); });
    case Activation::leaky_relu: {
      const V s = S::set1(slope);
      return run1(x, y, n, [s](V v) { return vleaky_relu<T>(v, s); });
    }
    case Activation::sigmoid: return run1(x, y, n, [](V v) { return vsigmoid<T>(v); });
    case Activation::tanh: return run1(x, y, n, [](V v) { return vtanh<T>(v); });
    case Activation::gelu_erf: return run1(x, y, n, [](V v) { return vgelu_erf<T>(v); });
    case Activation::gelu_tanh: return run1(x, y, n, [](V v) { return vgelu_tanh<T>(v); });
    case Activation::silu: return run1(x, y, n, [](V v) { return vsilu<T>(v); });
  }
}

template <class T>
void backward(Activation act, const T* gy, const T* v, T* gx, int64_t n, T slope) {
  using S = Simd<T>;
  using V = typename S::V;
  switch (act) {
    case Activation::relu:
      // 0 where x <= 0, else the gradient (NaN x passes it, as torch does)
      return run2(gy, v, gx, n, [](V g, V x) { return S::select(S::le(x, S::zero()), S::zero(), g); });
    case Activation::leaky_relu: {
      const V s = S::set1(slope);
      return run2(gy, v, gx, n, [s](V g, V x) { return S::select(S::gt(x, S::zero()), g, S::mul(g, s)); });
    }
    case Activation::sigmoid:
      return run2(gy, v, gx, n, [](V g, V y) { return S::mul(g, vsigmoid_grad_y<T>(y)); });
    case Activation::tanh:
      return run2(gy, v, gx, n, [](V g, V y) { return S::mul(g, vtanh_grad_y<T>(y)); });
    case Activation::gelu_erf:
      return run2(gy, v, gx, n, [](V g, V x) { return vgelu_erf_backward<T>(g, x); });
    case Activation::gelu_tanh:
      return run2(gy, v, gx, n, [](V g, V x) { return vgelu_tanh_backward<T>(g, x); });
    case Activation::silu:
      return run2(gy, v, gx, n, [](V g, V x) { return vsilu_backward<T>(g, x); });
  }
}

}  // namespace act_detail

extern const ActTable act_table = {
    {&act_detail::forward<float>, &act_detail::backward<float>},
    {&act_detail::forward<double>, &act_detail::backward<double>},
};

}  // namespace TK_NS
}  // namespace tk
