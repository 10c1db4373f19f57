// Internal interface of the optimizer kernels: the step-dependent scalars, computed in
// double once per call and rounded once to the kernel's type, and the per-target table.
#pragma once
#include <cstdint>

#include "trainkern/dispatch.h"

namespace tk {

template <class T>
struct AdamConsts {
  T one_minus_beta1, beta2, one_minus_beta2, step_size, inv_bc2_sqrt, eps, weight_decay, decay,
      grad_scale;
  bool decoupled, amsgrad, maximize, scaled;
};

template <class T>
struct AdamArrays {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  T* max_exp_avg_sq;
};

template <class T>
struct SgdConsts {
  T lr, momentum, one_minus_dampening, weight_decay;
  bool nesterov, maximize, first_step, has_momentum;
};

struct OptimTable {
  void (*adam_f32)(const AdamArrays<float>&, int64_t n, const AdamConsts<float>&);
  void (*adam_f64)(const AdamArrays<double>&, int64_t n, const AdamConsts<double>&);
  void (*sgd_f32)(float* p, const float* g, float* buf, int64_t n, const SgdConsts<float>&);
  void (*sgd_f64)(double* p, const double* g, double* buf, int64_t n, const SgdConsts<double>&);
};

TK_DECLARE_TABLE(OptimTable, optim_table)

// Elements below which a kernel runs on the calling thread: a parallel region costs a few
// microseconds, about the time one core needs to stream this much of an Adam update.
constexpr int64_t kOptimSerialBelow = int64_t{1} << 16;

}  // namespace tk
