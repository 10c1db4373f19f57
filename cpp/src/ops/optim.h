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

// One tensor of a multi-tensor step: its arrays and its constants (tensors with the same
// step count share one AdamConsts). Element k of the batch spans the global index range
// [offsets[k], offsets[k + 1]), so threads can split the batch by elements, not tensors.
template <class T>
struct AdamItem {
  AdamArrays<T> a;
  const AdamConsts<T>* c;
};

template <class T>
struct SgdItem {
  T* param;
  const T* grad;
  T* buf;
  const SgdConsts<T>* c;
};

template <class Item>
struct Batch {
  const Item* items;
  const int64_t* offsets;  // count + 1 entries, offsets[0] == 0
  int64_t count;
};

struct OptimTable {
  void (*adam_f32)(const AdamArrays<float>&, int64_t n, const AdamConsts<float>&);
  void (*adam_f64)(const AdamArrays<double>&, int64_t n, const AdamConsts<double>&);
  void (*sgd_f32)(float* p, const float* g, float* buf, int64_t n, const SgdConsts<float>&);
  void (*sgd_f64)(double* p, const double* g, double* buf, int64_t n, const SgdConsts<double>&);
  // All tensors of a batch in one parallel region; `amsgrad` is the same for every tensor.
  void (*adam_multi_f32)(const Batch<AdamItem<float>>&, bool amsgrad);
  void (*adam_multi_f64)(const Batch<AdamItem<double>>&, bool amsgrad);
  void (*sgd_multi_f32)(const Batch<SgdItem<float>>&);
  void (*sgd_multi_f64)(const Batch<SgdItem<double>>&);
};

TK_DECLARE_TABLE(OptimTable, optim_table)

// Elements below which a kernel runs on the calling thread: a parallel region costs a few
// microseconds, about the time one core needs to stream this much of an Adam update.
constexpr int64_t kOptimSerialBelow = int64_t{1} << 16;

}  // namespace tk
