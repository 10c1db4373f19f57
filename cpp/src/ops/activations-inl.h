// Elementwise activation kernels, forward and backward, compiled per target. One pass:
// each input element is loaded once and each output stored once; large out-of-place outputs
// use streaming stores (they would not survive in cache until the next kernel anyway).
#include <algorithm>
#include <cstdint>

#include "ops/activations.h"
#include "parallel.h"

namespace tk {
namespace TK_NS {
namespace act_detail {

#if defined(__GNUC__) || defined(__clang__)
#define TK_NOINLINE __attribute__((noinline))
#else
#define TK_NOINLINE
#endif

// Elements per central-range block (32 vectors of floats): at 256 the check cost inputs of
// scale 3, which never pass it, 3-5%; at 1024 one stray large input sent too many others
// down the general path (unit-normal inputs 1.38-1.59x faster instead of 1.46-1.65x).
constexpr int64_t kCentralBlock = 512;

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

// y[i] = f(in[i]...) for i in [b, e), two vectors per step (e - b a multiple of 2N). Not
// inlined: each form's loop then keeps its own constants in registers.
template <class T, bool Stream, class F, class... In>
TK_NOINLINE void steps(T* y, int64_t b, int64_t e, F f, const In*... in) {
  constexpr int64_t N = Simd<T>::N;
  for (int64_t i = b; i < e; i += 2 * N) {
    const auto a = f(Simd<T>::loadu(in + i)...), c = f(Simd<T>::loadu(in + i + N)...);
    put<T, Stream>(y + i, a);
    put<T, Stream>(y + i + N, c);
  }
}

// y[i] = f(in[i]...) over [b, e), for one input (forward) or two (backward).
template <class T, bool Stream, class F, class... In>
void map_range(T* y, int64_t b, int64_t e, F f, const In*... in) {
  using S = Simd<T>;
  constexpr int64_t N = S::N;
  int64_t i = b;
  if (Stream) {
    const int64_t head = head_to_boundary(y + i, e - i);
    if (head > 0) {
      const auto k = static_cast<size_t>(head);
      S::store_partial(y + i, f(S::load_partial(in + i, k)...), k);
      i += head;
    }
  }
  const int64_t body = i + (e - i) / (2 * N) * (2 * N);
  steps<T, Stream>(y, i, body, f, in...);
  for (i = body; i + N <= e; i += N) put<T, Stream>(y + i, f(S::loadu(in + i)...));
  if (i < e) {
    const auto k = static_cast<size_t>(e - i);
    S::store_partial(y + i, f(S::load_partial(in + i, k)...), k);
  }
}

// Over [b, e) of an array of n, for a functor with a central form: element i takes it when
// every input of its block [kCentralBlock floor(i / kCentralBlock), + kCentralBlock) (within
// [0, n)) lies in the central range, so which form computes an element depends on the inputs
// alone, not on the thread count or the output's alignment. Stores stay whole and aligned as
// in map_range: a vector that straddles two blocks of different forms is computed both ways
// and blended (a partial store between streamed ones would cost the stream 60%).
template <class T, bool Stream, class F, class... In>
void map_blocks(T* y, int64_t b, int64_t e, int64_t n, F f, const In*... in) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t N = S::N, K = kCentralBlock;
  const auto central = [f](auto... v) { return f.central(v...); };
  int64_t memo_blk = -1;
  bool memo = false;
  const auto takes_central = [&](int64_t blk) {  // checked just before the block is computed
    if (blk != memo_blk) {
      const int64_t b0 = blk * K;
      memo = f.central_ok(in + b0..., std::min(b0 + K, n) - b0);
      memo_blk = blk;
    }
    return memo;
  };
  // k <= N elements from i, each by its block's form
  const auto vec = [&](int64_t i, int64_t k) {
    const auto load = [&](const T* p) { return k == N ? S::loadu(p + i) : S::load_partial(p + i, size_t(k)); };
    const bool c0 = takes_central(i / K);
    const int64_t next = (i / K + 1) * K;
    V r = c0 ? central(load(in)...) : f(load(in)...);
    if (next < i + k && takes_central(next / K) != c0) {
      const V r1 = c0 ? f(load(in)...) : central(load(in)...);
      r = S::select(S::mask_not(S::tail(size_t(next - i))), r1, r);
    }
    return r;
  };
  int64_t i = b;
  if (Stream) {
    const int64_t head = head_to_boundary(y + i, e - i);
    if (head > 0) {
      S::store_partial(y + i, vec(i, head), size_t(head));
      i += head;
    }
  }
  while (i < e) {
    // a run of blocks of one form: each block checked when the run reaches it; pairs of
    // vectors that straddle two blocks of the run go through the same loop
    const bool c = takes_central(i / K);
    int64_t end = std::min((i / K + 1) * K, e);
    for (;;) {
      const int64_t body = i + (end - i) / (2 * N) * (2 * N);
      if (c)
        steps<T, Stream>(y, i, body, central, in...);
      else
        steps<T, Stream>(y, i, body, f, in...);
      i = body;
      if (end == e || takes_central(end / K) != c) break;
      end = std::min(end + K, e);
    }
    // under two vectors left before the run's end: the last may straddle into a block of the
    // other form, or be the partial last one
    for (; i + N <= end; i += N) put<T, Stream>(y + i, vec(i, N));
    if (i < end) {
      const int64_t k = std::min(N, e - i);
      if (k == N)
        put<T, Stream>(y + i, vec(i, N));
      else
        S::store_partial(y + i, vec(i, k), size_t(k));
      i += k;
    }
  }
}

template <class T, bool Stream, class F, class... In>
void map(T* y, int64_t b, int64_t e, int64_t n, F f, const In*... in) {
  if constexpr (has_central<F>)
    map_blocks<T, Stream>(y, b, e, n, f, in...);
  else
    map_range<T, Stream>(y, b, e, f, in...);
  if (Stream) Simd<T>::stream_fence();
}

// map over [0, n) in threads; streaming stores when the output is large and no input is it.
template <class T, class F, class... In>
void run(T* y, int64_t n, F f, const In*... in) {
  const bool stream = ((static_cast<const void*>(in) != static_cast<void*>(y)) && ...) &&
                      n * int64_t(sizeof(T)) >= kActStreamBytes;
  parallel_chunks(n, 64, kActSerialBelow, [&](int64_t b, int64_t e) {
    if (stream)
      map<T, true>(y, b, e, n, f, in...);
    else
      map<T, false>(y, b, e, n, f, in...);
  });
}

template <class T>
void forward(Activation act, const T* x, T* y, int64_t n, T slope) {
  using S = Simd<T>;
  using V = typename S::V;
  switch (act) {
    case Activation::relu: return run(y, n, [](V v) { return vrelu<T>(v); }, x);
    case Activation::leaky_relu: {
      const V s = S::set1(slope);
      return run(y, n, [s](V v) { return vleaky_relu<T>(v, s); }, x);
    }
    case Activation::sigmoid: return run(y, n, [](V v) { return vsigmoid<T>(v); }, x);
    case Activation::tanh: return run(y, n, [](V v) { return vtanh<T>(v); }, x);
    case Activation::gelu_erf: return run(y, n, GeluFwd<T, false>{}, x);
    case Activation::gelu_tanh: return run(y, n, GeluFwd<T, true>{}, x);
    case Activation::silu: return run(y, n, [](V v) { return vsilu<T>(v); }, x);
  }
}

template <class T>
void backward(Activation act, const T* gy, const T* v, T* gx, int64_t n, T slope) {
  using S = Simd<T>;
  using V = typename S::V;
  switch (act) {
    case Activation::relu: {
      // 0 where x <= 0, else the gradient (NaN x passes it, as torch does)
      const auto f = [](V g, V x) { return S::select(S::le(x, S::zero()), S::zero(), g); };
      return run(gx, n, f, gy, v);
    }
    case Activation::leaky_relu: {
      const V s = S::set1(slope);
      const auto f = [s](V g, V x) { return S::select(S::gt(x, S::zero()), g, S::mul(g, s)); };
      return run(gx, n, f, gy, v);
    }
    case Activation::sigmoid:
      return run(gx, n, [](V g, V y) { return S::mul(g, vsigmoid_grad_y<T>(y)); }, gy, v);
    case Activation::tanh:
      return run(gx, n, [](V g, V y) { return S::mul(g, vtanh_grad_y<T>(y)); }, gy, v);
    case Activation::gelu_erf: return run(gx, n, GeluBwd<T, false>{}, gy, v);
    case Activation::gelu_tanh: return run(gx, n, GeluBwd<T, true>{}, gy, v);
    case Activation::silu:
      return run(gx, n, [](V g, V x) { return vsilu_backward<T>(g, x); }, gy, v);
  }
}

}  // namespace act_detail

extern const ActTable act_table = {
    {&act_detail::forward<float>, &act_detail::backward<float>},
    {&act_detail::forward<double>, &act_detail::backward<double>},
};

}  // namespace TK_NS
}  // namespace tk
