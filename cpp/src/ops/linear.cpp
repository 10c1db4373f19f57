// ISA-agnostic entry points of the GEMM family: cache blocking from the cache sizes, the
// linear layer and its backward (composed of two products).
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>

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

template <class T>
void linear_impl(const LinearArgs<T>& a) {
  GemmProblem<T> p;
  p.m = a.m;
  p.n = a.n;
  p.k = a.k;
  p.a = a.x;
  p.a_rs = a.x_rs;
  p.a_cs = a.x_cs;
  p.b = a.w;
  p.b_rs = a.w_rs;
  p.b_cs = a.w_cs;
  p.c = a.y;
  p.c_rs = a.y_rs;
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
  std::unique_ptr<T[]> g_buf;
  if (a.act != LinearAct::none && a.m > 0 && a.n > 0) {
    g_buf.reset(new T[static_cast<size_t>(a.m * a.n)]);
    Family<T>::act_grad({a.m, a.n, a.grad_y, a.gy_rs, a.gy_cs, a.act_src, a.src_rs, a.src_cs,
                         a.from_preact, a.act, g_buf.get()});
    g = g_buf.get();
    g_rs = a.n;
    g_cs = 1;
  }
  // grad_w = xᵀ·g; g is its B operand, so the packing pass also sums g's columns.
  if (a.grad_b)
    for (int64_t j = 0; j < a.n; ++j) a.grad_b[j] = T(0);
  GemmProblem<T> w;
  w.m = a.k;
  w.n = a.n;
  w.k = a.m;
  w.a = a.x;
  w.a_rs = a.x_cs;
  w.a_cs = a.x_rs;
  w.b = g;
  w.b_rs = g_rs;
  w.b_cs = g_cs;
  w.c = a.grad_w;
  w.c_rs = a.n;
  w.b_colsum = a.grad_b;
  Family<T>::gemm(w);
  if (a.grad_x) {
    // grad_x = g·wᵀ: the transposed weight is read through the packing of B.
    GemmProblem<T> x;
    x.m = a.m;
    x.n = a.k;
    x.k = a.n;
    x.a = g;
    x.a_rs = g_rs;
    x.a_cs = g_cs;
    x.b = a.w;
    x.b_rs = a.w_cs;
    x.b_cs = a.w_rs;
    x.c = a.grad_x;
    x.c_rs = a.k;
    Family<T>::gemm(x);
  }
}

}  // namespace

void linear(const LinearArgs<float>& a) { linear_impl(a); }
void linear(const LinearArgs<double>& a) { linear_impl(a); }
void linear_backward(const LinearBackwardArgs<float>& a) { linear_backward_impl(a); }
void linear_backward(const LinearBackwardArgs<double>& a) { linear_backward_impl(a); }

}  // namespace tk
