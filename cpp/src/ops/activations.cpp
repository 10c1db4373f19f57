// ISA-agnostic entry points of the activation family: call the active target.
#include "ops/activations.h"

#include "trainkern/kernels.h"

namespace tk {

void activation_forward(Activation act, const float* x, float* y, int64_t n, float slope) {
  TK_ACTIVE(act_table).f32.forward(act, x, y, n, slope);
}

void activation_forward(Activation act, const double* x, double* y, int64_t n, double slope) {
  TK_ACTIVE(act_table).f64.forward(act, x, y, n, slope);
}

void activation_backward(Activation act, const float* grad_y, const float* v, float* grad_x,
                         int64_t n, float slope) {
  TK_ACTIVE(act_table).f32.backward(act, grad_y, v, grad_x, n, slope);
}

void activation_backward(Activation act, const double* grad_y, const double* v,
                         double* grad_x, int64_t n, double slope) {
  TK_ACTIVE(act_table).f64.backward(act, grad_y, v, grad_x, n, slope);
}

}  // namespace tk
