// The plain C++ API: pointers, sizes and hyper-parameters, no Python. Each function
// validates nothing (the bindings do) and runs the active ISA target's kernel.
#pragma once
#include <cstdint>

namespace tk {

struct AdamOptions {
  int64_t step = 1;  // 1-based, including this step
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled_weight_decay = false, amsgrad = false, maximize = false;
  double grad_scale = 1.0;  // the gradient is divided by it (1.0 = no scaling)
  bool has_grad_scale = false;
};

// param, exp_avg, exp_avg_sq (and max_exp_avg_sq when amsgrad) are updated in place.
void adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
               float* max_exp_avg_sq, int64_t n, const AdamOptions& o);
void adam_step(double* param, const double* grad, double* exp_avg, double* exp_avg_sq,
               double* max_exp_avg_sq, int64_t n, const AdamOptions& o);

struct SgdOptions {
  double lr = 0.0, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false, maximize = false;
  bool first_step = false;  // the momentum buffer is set to the gradient (torch's rule)
};

// momentum_buffer may be null when momentum == 0.
void sgd_step(float* param, const float* grad, float* momentum_buffer, int64_t n,
              const SgdOptions& o);
void sgd_step(double* param, const double* grad, double* momentum_buffer, int64_t n,
              const SgdOptions& o);

// One tensor of a multi-tensor optimizer step. Tensors may differ in size and step count
// (torch keeps one count per parameter); `step` is 1-based and includes this step.
template <class T>
struct AdamTensor {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  T* max_exp_avg_sq;  // used when o.amsgrad
  int64_t n;
  int64_t step;
};

// Updates every tensor with one parallel region that splits the total element count evenly
// over the threads (a thread may span several tensors). o.step is ignored.
void adam_step_multi(const AdamTensor<float>* tensors, int64_t count, const AdamOptions& o);
void adam_step_multi(const AdamTensor<double>* tensors, int64_t count, const AdamOptions& o);

template <class T>
struct SgdTensor {
  T* param;
  const T* grad;
  T* momentum_buffer;  // may be null when o.momentum == 0
  int64_t n;
  bool first_step;  // torch's first-step rule for this tensor's buffer
};

// As adam_step_multi; o.first_step is ignored (each tensor has its own).
void sgd_step_multi(const SgdTensor<float>* tensors, int64_t count, const SgdOptions& o);
void sgd_step_multi(const SgdTensor<double>* tensors, int64_t count, const SgdOptions& o);

// Memory-bandwidth probes shaped like the kernels' streams (see roofline-inl.h).
enum class StreamKind : int { read = 0, copy = 1, triad = 2, adam = 3 };
// Runs one pass of `kind` over arrays of n floats each; returns bytes moved.
double stream_pass(StreamKind kind, float* const* arrays, int64_t n);
// Peak FMA throughput of the active target on num_threads() threads, in GFLOP/s.
double peak_gflops(bool f64);

// Linear layer: y = act(x·w + bias), the bias and activation applied to the accumulators
// before C is stored. Operands are read through element strides (any layout, transposed
// views included); y and preact have a unit column stride.
enum class LinearAct : int { none = 0, relu, sigmoid, tanh, gelu, gelu_tanh, silu };

template <class T>
struct LinearArgs {
  int64_t m = 0, k = 0, n = 0;
  const T* x = nullptr;  // m×k
  int64_t x_rs = 0, x_cs = 0;
  const T* w = nullptr;  // k×n
  int64_t w_rs = 0, w_cs = 0;
  const T* bias = nullptr;  // n, or null
  int64_t bias_stride = 1;
  T* y = nullptr;  // m×n
  int64_t y_rs = 0;
  T* preact = nullptr;  // m×n (x·w + bias), or null
  int64_t preact_rs = 0;
  LinearAct act = LinearAct::none;
};
void linear(const LinearArgs<float>& a);
void linear(const LinearArgs<double>& a);

// g = grad_y * act'(y or preact); grad_x = g·wᵀ (when grad_x is not null),
// grad_w = xᵀ·g, grad_b = column sums of g (when grad_b is not null), deterministic for
// any thread count. Outputs are contiguous: grad_x m×k, grad_w k×n, grad_b n.
template <class T>
struct LinearBackwardArgs {
  int64_t m = 0, k = 0, n = 0;
  const T* grad_y = nullptr;  // m×n
  int64_t gy_rs = 0, gy_cs = 0;
  const T* x = nullptr;  // m×k
  int64_t x_rs = 0, x_cs = 0;
  const T* w = nullptr;  // k×n
  int64_t w_rs = 0, w_cs = 0;
  // The derivative's source: the output y, or the pre-activation when from_preact.
  const T* act_src = nullptr;
  int64_t src_rs = 0, src_cs = 0;
  bool from_preact = false;
  LinearAct act = LinearAct::none;
  T* grad_x = nullptr;
  T* grad_w = nullptr;
  T* grad_b = nullptr;
};
void linear_backward(const LinearBackwardArgs<float>& a);
void linear_backward(const LinearBackwardArgs<double>& a);
// Elementwise activations (ops/activations-inl.h).
enum class Activation : int { relu = 0, leaky_relu, sigmoid, tanh, gelu_erf, gelu_tanh, silu };
// y = act(x) over n elements; y may be x (in place) but must not overlap it otherwise.
// slope: leaky_relu's negative_slope (ignored by the others).
void activation_forward(Activation act, const float* x, float* y, int64_t n, float slope);
void activation_forward(Activation act, const double* x, double* y, int64_t n, double slope);
// grad_x = grad_y * act'(v), where v is the forward input x, except sigmoid and tanh, which
// take the forward output y. grad_x may be grad_y or v.
void activation_backward(Activation act, const float* grad_y, const float* v, float* grad_x,
                         int64_t n, float slope);
void activation_backward(Activation act, const double* grad_y, const double* v,
                         double* grad_x, int64_t n, double slope);

// Losses (ops/losses-inl.h). Each fuses the loss and its gradient in one call.
enum class Reduction : int { none = 0, mean = 1, sum = 2 };

struct CrossEntropyOptions {
  Reduction reduction = Reduction::mean;
  double label_smoothing = 0.0;
  int64_t ignore_index = -100;
  // mean over class-index labels divides by the rows not ignored; the caller counts them
  // (it validates the labels anyway). Probability labels divide by the row count.
  int64_t count = 0;
};

// Softmax cross-entropy over rows of `logits` (n_rows x n_cls, C-contiguous), semantics of
// torch.nn.functional.cross_entropy. Exactly one of `labels` (class indices, n_rows, already
// validated to lie in [0, n_cls) or equal ignore_index) and `probs` (n_rows x n_cls) is set.
// row_loss receives the per-row losses (ignored rows 0). grad (may be null, may equal
// logits) receives the gradient of the reduced loss (of the sum of row losses for none).
// Returns the reduced loss (mean or sum; 0 for none), summed over rows in a fixed order.
double softmax_cross_entropy(const float* logits, const int64_t* labels, const float* probs,
                             int64_t n_rows, int64_t n_cls, float* row_loss, float* grad,
                             const CrossEntropyOptions& o);
double softmax_cross_entropy(const double* logits, const int64_t* labels, const double* probs,
                             int64_t n_rows, int64_t n_cls, double* row_loss, double* grad,
                             const CrossEntropyOptions& o);

// Checks class-index labels for softmax_cross_entropy: counts those != ignore_index into
// *count and returns the first row whose label is neither ignore_index nor in [0, n_cls), or
// -1 when there is none.
int64_t check_class_labels(const int64_t* labels, int64_t n, int64_t n_cls,
                           int64_t ignore_index, int64_t* count);

// Mean squared error over n elements. elem_loss (reduction none, else null) receives
// (pred - target)^2; grad (may be null, may equal pred or target) the gradient of the reduced
// loss. Returns the mean or sum (0 for none), reduced in fixed blocks in index order.
double mse_loss(const float* pred, const float* target, int64_t n, Reduction r,
                float* elem_loss, float* grad);
double mse_loss(const double* pred, const double* target, int64_t n, Reduction r,
                double* elem_loss, double* grad);

}  // namespace tk
