// ISA-agnostic entry points of the GEMM family: cache blocking from the cache sizes, the
// linear layer and its backward (composed of two products).
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "ops/gemm.h"
#include "parallel.h"
#include "trainkern/kernels.h"

namespace tk {
namespace {

struct Caches {
  int64_t l1, l2, l3;
};

int64_t cache_or(int name, int64_t fallback, int64_t lo, int64_t hi) {
  const long v = sysconf(name);
  // Virtual machines report 0, -1 or implausible sizes (a whole host's L3): clamp.
  return v > 0 ? std::clamp<int64_t>(v, lo, hi) : fallback;
}

const Caches& caches() {
  static const Caches c = {
      cache_or(_SC_LEVEL1_DCACHE_SIZE, 32 << 10, 16 << 10, 256 << 10),
      cache_or(_SC_LEVEL2_CACHE_SIZE, 512 << 10, 128 << 10, 8 << 20),
      // At most 32 MiB, one Zen 4 CCD's L3: this VM reports the host's 320 MiB, and
      // clamped to 64 MiB it made the shared B panel 16 MiB (4096^3 float, 1 thread:
      // 93-98 GFLOP/s, against 106-109 with the 8 MiB panel).
      cache_or(_SC_LEVEL3_CACHE_SIZE, 8 << 20, 1 << 20, 32 << 20),
  };
  return c;
}

// KC: a B sliver (KC×NR) takes a quarter of L2, so the A block and C tiles fit beside it;
// MC: the A block an eighth of L2; NC: the shared B panel a quarter of L3.
// (Measured on Zen 4, 1 MiB L2: KC 512-1024 with MC 12-48 rows all reach ~95% of the FMA
// peak with 6×64 tiles; larger MC or KC fall off.)
GemmBlocking blocking(GemmShape s, int64_t elem) {
  const Caches& c = caches();
  GemmBlocking b;
  b.kc = std::clamp<int64_t>(c.l2 / 4 / (s.nr * elem), 128, 1024) / 8 * 8;
  b.mc = std::max<int64_t>(c.l2 / 8 / (b.kc * elem) / s.mr, 1) * s.mr;
  b.nc = std::clamp<int64_t>(c.l3 / 4 / (b.kc * elem) / s.nr, 1, 256) * s.nr;
  // Rows of 4 KiB: long enough for whole-line streaming, short enough that a few dozen
  // rows of the panel fit in L2 beside the output rows they update.
  b.nc_skinny = std::max<int64_t>(4096 / elem / s.nr, 1) * s.nr;
  b.l2_bytes = c.l2;
  return b;
}

template <class T>
struct Family;
template <>
struct Family<float> {
  static void gemm(const GemmProblem<float>& p) {
    const GemmTable& t = TK_ACTIVE(gemm_table);
    t.gemm_f32(p, blocking(t.shape_f32, sizeof(float)));
  }
  static void act_grad(const ActGradArgs<float>& a) { TK_ACTIVE(gemm_table).act_grad_f32(a); }
};
template <>
struct Family<double> {
  static void gemm(const GemmProblem<double>& p) {
    const GemmTable& t = TK_ACTIVE(gemm_table);
    t.gemm_f64(p, blocking(t.shape_f64, sizeof(double)));
  }
  static void act_grad(const ActGradArgs<double>& a) { TK_ACTIVE(gemm_table).act_grad_f64(a); }
};

// C (m x n, row stride c_rs) = A (m x k) B (k x n), each operand given by its strides.
template <class T>
GemmProblem<T> product(int64_t m, int64_t n, int64_t k, const T* a, int64_t a_rs, int64_t a_cs,
                       const T* b, int64_t b_rs, int64_t b_cs, T* c, int64_t c_rs) {
  GemmProblem<T> p;
  p.m = m;
  p.n = n;
  p.k = k;
  p.a = a;
  p.a_rs = a_rs;
  p.a_cs = a_cs;
  p.b = b;
  p.b_rs = b_rs;
  p.b_cs = b_cs;
  p.c = c;
  p.c_rs = c_rs;
  return p;
}

// g = grad_y * act'(.) lives here between the two backward products. Kept per thread between
// calls, like the GEMM's own scratch: a fresh allocation of a large layer's g would map and
// fault in new pages on every call.
template <class T>
T* g_scratch(size_t elems) {
  thread_local std::vector<T> buf;
  if (buf.size() < elems) buf.resize(elems);
  return buf.data();
}

template <class T>
void linear_impl(const LinearArgs<T>& a) {
  GemmProblem<T> p =
      product(a.m, a.n, a.k, a.x, a.x_rs, a.x_cs, a.w, a.w_rs, a.w_cs, a.y, a.y_rs);
  p.pre = a.preact;
  p.pre_rs = a.preact_rs;
  p.bias = a.bias;
  p.bias_stride = a.bias_stride;
  p.act = a.act;
  Family<T>::gemm(p);
}

template <class T>
void linear_backward_impl(const LinearBackwardArgs<T>& a) {
  // g = grad_y * act'(.), once; without an activation grad_y itself is g.
  const T* g = a.grad_y;
  int64_t g_rs = a.gy_rs, g_cs = a.gy_cs;
  if (a.act != LinearAct::none && a.m > 0 && a.n > 0) {
    T* buf = g_scratch<T>(static_cast<size_t>(a.m * a.n));
    Family<T>::act_grad({a.m, a.n, a.grad_y, a.gy_rs, a.gy_cs, a.act_src, a.src_rs, a.src_cs,
                         a.from_preact, a.act, buf});
    g = buf;
    g_rs = a.n;
    g_cs = 1;
  }
  // grad_w = xᵀ·g; g is its B operand, so the packing pass also sums g's columns.
  if (a.grad_b)
    for (int64_t j = 0; j < a.n; ++j) a.grad_b[j] = T(0);
  GemmProblem<T> w = product(a.k, a.n, a.m, a.x, a.x_cs, a.x_rs, g, g_rs, g_cs, a.grad_w, a.n);
  w.b_colsum = a.grad_b;
  Family<T>::gemm(w);
  // grad_x = g·wᵀ: the transposed weight is read through the packing of B.
  if (a.grad_x)
    Family<T>::gemm(product(a.m, a.k, a.n, g, g_rs, g_cs, a.w, a.w_cs, a.w_rs, a.grad_x, a.k));
}

}  // namespace

void linear(const LinearArgs<float>& a) { linear_impl(a); }
void linear(const LinearArgs<double>& a) { linear_impl(a); }
void linear_backward(const LinearBackwardArgs<float>& a) { linear_backward_impl(a); }
void linear_backward(const LinearBackwardArgs<double>& a) { linear_backward_impl(a); }

}  // namespace tk
