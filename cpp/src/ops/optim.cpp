// ISA-agnostic entry points of the optimizer family: derive the step-dependent scalars
// in double, round them once, and call the active target.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "ops/optim.h"
#include "ops/roofline.h"
#include "trainkern/kernels.h"

namespace tk {
namespace {

template <class T>
AdamConsts<T> adam_consts(const AdamOptions& o) {
  const double t = static_cast<double>(o.step);
  const double bc1 = 1.0 - std::pow(o.beta1, t);
  const double bc2 = 1.0 - std::pow(o.beta2, t);
  AdamConsts<T> c;
  c.one_minus_beta1 = static_cast<T>(1.0 - o.beta1);
  c.beta2 = static_cast<T>(o.beta2);
  c.one_minus_beta2 = static_cast<T>(1.0 - o.beta2);
  c.step_size = static_cast<T>(o.lr / bc1);
  c.inv_bc2_sqrt = static_cast<T>(1.0 / std::sqrt(bc2));
  c.eps = static_cast<T>(o.eps);
  c.weight_decay = static_cast<T>(o.weight_decay);
  c.decay = static_cast<T>(1.0 - o.lr * o.weight_decay);
  c.grad_scale = static_cast<T>(o.grad_scale);
  c.decoupled = o.decoupled_weight_decay;
  c.amsgrad = o.amsgrad;
  c.maximize = o.maximize;
  c.scaled = o.has_grad_scale;
  return c;
}

template <class T>
SgdConsts<T> sgd_consts(const SgdOptions& o) {
  SgdConsts<T> c;
  c.lr = static_cast<T>(o.lr);
  c.momentum = static_cast<T>(o.momentum);
  c.one_minus_dampening = static_cast<T>(1.0 - o.dampening);
  c.weight_decay = static_cast<T>(o.weight_decay);
  c.nesterov = o.nesterov;
  c.maximize = o.maximize;
  c.first_step = o.first_step;
  c.has_momentum = o.momentum != 0.0;
  return c;
}

}  // namespace

void adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
               float* max_exp_avg_sq, int64_t n, const AdamOptions& o) {
  TK_ACTIVE(optim_table).adam_f32({param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq}, n,
                                  adam_consts<float>(o));
}

void adam_step(double* param, const double* grad, double* exp_avg, double* exp_avg_sq,
               double* max_exp_avg_sq, int64_t n, const AdamOptions& o) {
  TK_ACTIVE(optim_table).adam_f64({param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq}, n,
                                  adam_consts<double>(o));
}

void sgd_step(float* param, const float* grad, float* buf, int64_t n, const SgdOptions& o) {
  TK_ACTIVE(optim_table).sgd_f32(param, grad, buf, n, sgd_consts<float>(o));
}

void sgd_step(double* param, const double* grad, double* buf, int64_t n, const SgdOptions& o) {
  TK_ACTIVE(optim_table).sgd_f64(param, grad, buf, n, sgd_consts<double>(o));
}

namespace {

// Lays the tensors end to end for parallel_segments and gives each its constants; tensors
// whose step equals the previous tensor's share them (the usual case: one step for all).
template <class T>
void adam_multi(const AdamTensor<T>* t, int64_t count, const AdamOptions& o,
                void (*kernel)(const Batch<AdamItem<T>>&, bool)) {
  if (count <= 0) return;
  std::vector<AdamConsts<T>> consts;
  consts.reserve(static_cast<size_t>(count));  // items point into it: no reallocation
  std::vector<AdamItem<T>> items(static_cast<size_t>(count));
  std::vector<int64_t> offsets(static_cast<size_t>(count) + 1);
  AdamOptions ok = o;
  offsets[0] = 0;
  for (int64_t k = 0; k < count; ++k) {
    if (consts.empty() || t[k].step != ok.step) {
      ok.step = t[k].step;
      consts.push_back(adam_consts<T>(ok));
    }
    items[k] = {{t[k].param, t[k].grad, t[k].exp_avg, t[k].exp_avg_sq, t[k].max_exp_avg_sq},
                &consts.back()};
    offsets[k + 1] = offsets[k] + t[k].n;
  }
  kernel({items.data(), offsets.data(), count}, o.amsgrad);
}

template <class T>
void sgd_multi(const SgdTensor<T>* t, int64_t count, const SgdOptions& o,
               void (*kernel)(const Batch<SgdItem<T>>&)) {
  if (count <= 0) return;
  SgdOptions first = o, later = o;
  first.first_step = true;
  later.first_step = false;
  const SgdConsts<T> consts[2] = {sgd_consts<T>(later), sgd_consts<T>(first)};
  std::vector<SgdItem<T>> items(static_cast<size_t>(count));
  std::vector<int64_t> offsets(static_cast<size_t>(count) + 1);
  offsets[0] = 0;
  for (int64_t k = 0; k < count; ++k) {
    items[k] = {t[k].param, t[k].grad, t[k].momentum_buffer, &consts[t[k].first_step ? 1 : 0]};
    offsets[k + 1] = offsets[k] + t[k].n;
  }
  kernel({items.data(), offsets.data(), count});
}

}  // namespace

void adam_step_multi(const AdamTensor<float>* tensors, int64_t count, const AdamOptions& o) {
  adam_multi(tensors, count, o, TK_ACTIVE(optim_table).adam_multi_f32);
}

void adam_step_multi(const AdamTensor<double>* tensors, int64_t count, const AdamOptions& o) {
  adam_multi(tensors, count, o, TK_ACTIVE(optim_table).adam_multi_f64);
}

void sgd_step_multi(const SgdTensor<float>* tensors, int64_t count, const SgdOptions& o) {
  sgd_multi(tensors, count, o, TK_ACTIVE(optim_table).sgd_multi_f32);
}

void sgd_step_multi(const SgdTensor<double>* tensors, int64_t count, const SgdOptions& o) {
  sgd_multi(tensors, count, o, TK_ACTIVE(optim_table).sgd_multi_f64);
}

double stream_pass(StreamKind kind, float* const* arrays, int64_t n) {
  TK_ACTIVE(roofline_table).stream(kind, arrays, n);
  return stream_bytes_per_element(kind) * static_cast<double>(n);
}

double peak_gflops(bool f64) {
  const RooflineTable& t = TK_ACTIVE(roofline_table);
  auto run = [&](int64_t iters) {
    const auto t0 = std::chrono::steady_clock::now();
    const double flops = f64 ? t.fma_f64(iters) : t.fma_f32(iters);
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    return flops / dt.count() * 1e-9;
  };
  run(1 << 12);  // wake the threads and the vector units up
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) best = std::max(best, run(1 << 20));
  return best;
}

}  // namespace tk
