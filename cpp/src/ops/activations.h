// Internal interface of the elementwise activation kernels (ops/activations-inl.h).
#pragma once
#include <cstdint>

#include "trainkern/dispatch.h"
#include "trainkern/kernels.h"

namespace tk {

template <class T>
struct ActTableT {
  // y = f(x); y may equal x (in place), never overlap it otherwise.
  void (*forward)(Activation act, const T* x, T* y, int64_t n, T slope);
  // gx = gy * f'(v), v the input x, or the output y for sigmoid and tanh; gx may equal gy
  // or v.
  void (*backward)(Activation act, const T* gy, const T* v, T* gx, int64_t n, T slope);
};

struct ActTable {
  ActTableT<float> f32;
  ActTableT<double> f64;
};

TK_DECLARE_TABLE(ActTable, act_table)

// Elements below which a kernel runs on the calling thread (a parallel region costs a few
// microseconds; GELU at ~0.5 ns per element needs about this many to pay for it).
constexpr int64_t kActSerialBelow = int64_t{1} << 15;
// Outputs of at least this many bytes, written out of place, bypass the caches: they are
// larger than what the next kernel could find there anyway.
constexpr int64_t kActStreamBytes = int64_t{16} << 20;

}  // namespace tk
