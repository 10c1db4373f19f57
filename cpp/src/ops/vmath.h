// Test hook of the vectorised math (ops/vmath-inl.h): one function applied elementwise, so
// that tests can sweep each building block on every target.
#pragma once
#include <cstdint>

#include "trainkern/dispatch.h"

namespace tk {

// The order is the binding's name list (register_activations.cpp).
enum class VmathFn : int {
  exp,
  expm1,
  erf,
  erfc,
  sigmoid,
  tanh,
  gelu_erf,
  gelu_tanh,
  silu,
  gelu_erf_grad,
  gelu_tanh_grad,
  silu_grad,
  count
};

struct VmathTable {
  void (*eval_f32)(VmathFn fn, const float* x, float* y, int64_t n);
  void (*eval_f64)(VmathFn fn, const double* x, double* y, int64_t n);
};

TK_DECLARE_TABLE(VmathTable, vmath_table)

}  // namespace tk
