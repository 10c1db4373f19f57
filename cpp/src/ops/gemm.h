// Internal interface of the GEMM family: one problem description shared by matmul, linear
// and the two products of linear_backward, the cache blocking, and the per-target table.
#pragma once
#include <cstdint>

#include "trainkern/dispatch.h"
#include "trainkern/kernels.h"

namespace tk {

// C = A·B with A (m×k) and B (k×n) read through arbitrary element strides; C has a unit
// column stride. On the last K block the epilogue adds `bias` (length n, any element stride),
// writes the pre-activation to `pre` when it is not null, applies `act` and stores C.
template <class T>
struct GemmProblem {
  int64_t m = 0, n = 0, k = 0;
  const T* a = nullptr;
  int64_t a_rs = 0, a_cs = 0;
  const T* b = nullptr;
  int64_t b_rs = 0, b_cs = 0;
  T* c = nullptr;
  int64_t c_rs = 0;
  T* pre = nullptr;
  int64_t pre_rs = 0;
  const T* bias = nullptr;
  int64_t bias_stride = 1;
  LinearAct act = LinearAct::none;
  // When not null: receives the column sums of B (length n), taken while B is packed.
  T* b_colsum = nullptr;
};

// Cache blocks in elements: KC (depth of a packed block), MC (rows of a packed A block,
// a multiple of MR), NC (columns of a packed B panel, a multiple of NR); for short M, the
// widest panel of a row-major B (nc_skinny, a multiple of NR) and the L2 size it is
// fitted to.
struct GemmBlocking {
  int64_t mc, kc, nc, nc_skinny, l2_bytes;
};

// Register tile of one target and element type.
struct GemmShape {
  int mr, nr;
};

// g = grad_y * act'(from y or preact), elementwise over an m×n matrix: `src` is y or
// preact (as `from_preact` says), all with element strides; g is contiguous (row stride n).
template <class T>
struct ActGradArgs {
  int64_t m, n;
  const T* grad_y;
  int64_t gy_rs, gy_cs;
  const T* src;
  int64_t src_rs, src_cs;
  bool from_preact;
  LinearAct act;
  T* g;
};

struct GemmTable {
  GemmShape shape_f32, shape_f64;
  void (*gemm_f32)(const GemmProblem<float>&, const GemmBlocking&);
  void (*gemm_f64)(const GemmProblem<double>&, const GemmBlocking&);
  void (*act_grad_f32)(const ActGradArgs<float>&);
  void (*act_grad_f64)(const ActGradArgs<double>&);
};

TK_DECLARE_TABLE(GemmTable, gemm_table)

}  // namespace tk
