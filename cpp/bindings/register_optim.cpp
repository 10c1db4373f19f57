// Bindings of the optimizer kernels: validate every argument, then release the GIL and run.
#include <cmath>
#include <memory>
#include <vector>

#include "intake.h"
#include "intake_list.h"
#include "trainkern/kernels.h"

namespace tk {
namespace bind {

namespace {

// Hyper-parameters shared by the single- and multi-tensor Adam bindings.
AdamOptions adam_options(const Checker& c, py::handle lr, py::handle beta1, py::handle beta2,
                         py::handle eps, py::handle weight_decay, py::handle decoupled,
                         py::handle amsgrad, py::handle maximize, py::handle grad_scale) {
  AdamOptions o;
  o.lr = c.in_range(lr, "lr", 0.0, false, INFINITY, false);
  o.beta1 = c.in_range(beta1, "beta1", 0.0, false, 1.0, true);
  o.beta2 = c.in_range(beta2, "beta2", 0.0, false, 1.0, true);
  // eps = 0 is allowed, as in torch: a zero second moment then gives 0/0 = NaN there too.
  o.eps = c.in_range(eps, "eps", 0.0, false, INFINITY, false);
  o.weight_decay = c.in_range(weight_decay, "weight_decay", 0.0, false, INFINITY, false);
  o.decoupled_weight_decay = c.boolean(decoupled, "decoupled_weight_decay");
  o.amsgrad = c.boolean(amsgrad, "amsgrad");
  o.maximize = c.boolean(maximize, "maximize");
  if (!grad_scale.is_none()) {
    o.grad_scale = c.in_range(grad_scale, "grad_scale", 0.0, true, INFINITY, false);
    o.has_grad_scale = true;
  }
  return o;
}

// Hyper-parameters shared by the single- and multi-tensor SGD bindings.
SgdOptions sgd_options(const Checker& c, py::handle lr, py::handle momentum,
                       py::handle dampening, py::handle nesterov, py::handle weight_decay,
                       py::handle maximize) {
  SgdOptions o;
  if (lr.is_none()) c.type_error("lr is required");
  o.lr = c.in_range(lr, "lr", 0.0, false, INFINITY, false);
  o.momentum = c.in_range(momentum, "momentum", 0.0, false, INFINITY, false);
  o.dampening = c.finite(dampening, "dampening");
  o.weight_decay = c.in_range(weight_decay, "weight_decay", 0.0, false, INFINITY, false);
  o.nesterov = c.boolean(nesterov, "nesterov");
  o.maximize = c.boolean(maximize, "maximize");
  if (o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0))
    c.value_error("nesterov=True requires momentum > 0 and dampening == 0");
  return o;
}

void adam_binding(py::handle param, py::handle grad, py::handle exp_avg, py::handle exp_avg_sq,
                  py::handle max_exp_avg_sq, py::handle step, py::handle lr, py::handle beta1,
                  py::handle beta2, py::handle eps, py::handle weight_decay,
                  py::handle decoupled, py::handle amsgrad, py::handle maximize,
                  py::handle grad_scale) {
  const Checker c("adam_step");
  const int64_t t = c.integer(step, "step", 1);
  AdamOptions o = adam_options(c, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                               maximize, grad_scale);
  o.step = t;

  Arg p = c.array(param, "param");
  Arg g = c.array(grad, "grad");
  Arg m = c.array(exp_avg, "exp_avg");
  Arg v = c.array(exp_avg_sq, "exp_avg_sq");
  Arg vmax = Arg::none("max_exp_avg_sq");
  if (o.amsgrad) {
    if (max_exp_avg_sq.is_none()) c.value_error("amsgrad=True needs max_exp_avg_sq");
    vmax = c.array(max_exp_avg_sq, "max_exp_avg_sq");
  } else if (!max_exp_avg_sq.is_none()) {
    c.value_error("max_exp_avg_sq is only used with amsgrad=True");
  }
  const DType dt = c.floating(p);
  for (const Arg* a : {&g, &m, &v, o.amsgrad ? &vmax : nullptr}) {
    if (a == nullptr) continue;
    c.same_dtype(*a, p);
    c.same_shape(*a, p);
  }
  for (const Arg* a : {&p, &g, &m, &v, o.amsgrad ? &vmax : nullptr}) {
    if (a == nullptr) continue;
    c.c_contiguous(*a);
    if (a != &g) c.writeable(*a);
  }
  c.no_overlap({&p, &g, &m, &v, o.amsgrad ? &vmax : nullptr});

  const int64_t n = p.size();
  void* vm = o.amsgrad ? vmax.data() : nullptr;
  py::gil_scoped_release release;
  if (dt == DType::f32)
    adam_step(static_cast<float*>(p.data()), static_cast<const float*>(g.data()),
              static_cast<float*>(m.data()), static_cast<float*>(v.data()),
              static_cast<float*>(vm), n, o);
  else
    adam_step(static_cast<double*>(p.data()), static_cast<const double*>(g.data()),
              static_cast<double*>(m.data()), static_cast<double*>(v.data()),
              static_cast<double*>(vm), n, o);
}

void sgd_binding(py::handle param, py::handle grad, py::handle momentum_buffer,
                 py::handle step, py::handle lr, py::handle momentum, py::handle dampening,
                 py::handle nesterov, py::handle weight_decay, py::handle maximize) {
  const Checker c("sgd_step");
  SgdOptions o = sgd_options(c, lr, momentum, dampening, nesterov, weight_decay, maximize);
  if (!step.is_none()) o.first_step = c.integer(step, "step", 1) == 1;

  Arg p = c.array(param, "param");
  Arg g = c.array(grad, "grad");
  Arg b = Arg::none("momentum_buffer");
  const bool has_buf = o.momentum != 0.0;
  if (has_buf) {
    if (momentum_buffer.is_none()) c.value_error("momentum != 0 needs momentum_buffer");
    b = c.array(momentum_buffer, "momentum_buffer");
  }
  const DType dt = c.floating(p);
  c.same_dtype(g, p);
  c.same_shape(g, p);
  if (has_buf) {
    c.same_dtype(b, p);
    c.same_shape(b, p);
  }
  for (const Arg* a : {&p, &g, has_buf ? &b : nullptr}) {
    if (a == nullptr) continue;
    c.c_contiguous(*a);
    if (a != &g) c.writeable(*a);
  }
  c.no_overlap({&p, &g, has_buf ? &b : nullptr});

  const int64_t n = p.size();
  void* bp = has_buf ? b.data() : nullptr;
  py::gil_scoped_release release;
  if (dt == DType::f32)
    sgd_step(static_cast<float*>(p.data()), static_cast<const float*>(g.data()),
             static_cast<float*>(bp), n, o);
  else
    sgd_step(static_cast<double*>(p.data()), static_cast<const double*>(g.data()),
             static_cast<double*>(bp), n, o);
}

// Multi-tensor Adam: lists with one entry per tensor. Every entry is checked before any
// memory is written; the per-entry checks allocate nothing for plain ndarrays.
template <class T>
void run_adam_multi(const ArrayList& p, const ArrayList& g, const ArrayList& m,
                    const ArrayList& v, const ArrayList* vmax, const std::vector<int64_t>& steps,
                    const AdamOptions& o) {
  std::vector<AdamTensor<T>> t(p.size());
  for (size_t i = 0; i < p.size(); ++i)
    t[i] = {static_cast<T*>(const_cast<void*>(p[i].data())),
            static_cast<const T*>(g[i].data()),
            static_cast<T*>(const_cast<void*>(m[i].data())),
            static_cast<T*>(const_cast<void*>(v[i].data())),
            vmax ? static_cast<T*>(const_cast<void*>((*vmax)[i].data())) : nullptr,
            static_cast<int64_t>(p[i].size()),
            steps[i]};
  py::gil_scoped_release release;
  adam_step_multi(t.data(), static_cast<int64_t>(t.size()), o);
}

void adam_multi_binding(py::handle params, py::handle grads, py::handle exp_avgs,
                        py::handle exp_avg_sqs, py::handle max_exp_avg_sqs, py::handle steps,
                        py::handle step_counters, py::handle lr, py::handle beta1,
                        py::handle beta2, py::handle eps, py::handle weight_decay,
                        py::handle decoupled, py::handle amsgrad, py::handle maximize,
                        py::handle grad_scale) {
  const Checker c("adam_step_multi");
  const ListChecker lc(c);
  const AdamOptions o = adam_options(c, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                                     maximize, grad_scale);
  if (steps.is_none() == step_counters.is_none())
    c.type_error("pass exactly one of steps and step_counters");
  const ArrayList p(c, params, "params"), g(c, grads, "grads"), m(c, exp_avgs, "exp_avgs"),
      v(c, exp_avg_sqs, "exp_avg_sqs");
  std::unique_ptr<const ArrayList> vmax;
  if (o.amsgrad) {
    if (max_exp_avg_sqs.is_none()) c.value_error("amsgrad=True needs max_exp_avg_sqs");
    vmax.reset(new ArrayList(c, max_exp_avg_sqs, "max_exp_avg_sqs"));
  } else if (!max_exp_avg_sqs.is_none()) {
    c.value_error("max_exp_avg_sqs is only used with amsgrad=True");
  }
  std::unique_ptr<const ArrayList> counters;
  if (!step_counters.is_none()) counters.reset(new ArrayList(c, step_counters, "step_counters"));
  for (const ArrayList* l : {&g, &m, &v, vmax.get(), counters.get()})
    if (l) lc.same_length(*l, p);

  const DType dt = p.size() ? lc.floating(p, 0) : DType::f32;
  for (size_t i = 0; i < p.size(); ++i) {
    lc.like(p, i, p, 0);
    for (const ArrayList* l : {&g, &m, &v, vmax.get()})
      if (l) lc.like(*l, i, p, 0);
    lc.layout(p, i, false);
    lc.layout(g, i, true);
    lc.layout(m, i, false);
    lc.layout(v, i, false);
    if (vmax) lc.layout(*vmax, i, false);
  }
  const std::vector<int64_t> step_counts =
      counters ? read_counters(lc, *counters) : step_list(c, steps, "steps", p.size(), 1);
  lc.no_overlap({&p, &m, &v, vmax.get(), counters.get()}, {&g});

  if (counters) commit_counters(*counters, step_counts);
  if (dt == DType::f32)
    run_adam_multi<float>(p, g, m, v, vmax.get(), step_counts, o);
  else
    run_adam_multi<double>(p, g, m, v, vmax.get(), step_counts, o);
}

template <class T>
void run_sgd_multi(const ArrayList& p, const ArrayList& g, const ArrayList* b,
                   const std::vector<int64_t>& steps, const SgdOptions& o) {
  std::vector<SgdTensor<T>> t(p.size());
  for (size_t i = 0; i < p.size(); ++i)
    t[i] = {static_cast<T*>(const_cast<void*>(p[i].data())),
            static_cast<const T*>(g[i].data()),
            b ? static_cast<T*>(const_cast<void*>((*b)[i].data())) : nullptr,
            static_cast<int64_t>(p[i].size()),
            steps[i] == 1};
  py::gil_scoped_release release;
  sgd_step_multi(t.data(), static_cast<int64_t>(t.size()), o);
}

void sgd_multi_binding(py::handle params, py::handle grads, py::handle momentum_buffers,
                       py::handle steps, py::handle lr, py::handle momentum,
                       py::handle dampening, py::handle nesterov, py::handle weight_decay,
                       py::handle maximize) {
  const Checker c("sgd_step_multi");
  const ListChecker lc(c);
  const SgdOptions o = sgd_options(c, lr, momentum, dampening, nesterov, weight_decay, maximize);
  const ArrayList p(c, params, "params"), g(c, grads, "grads");
  lc.same_length(g, p);
  std::unique_ptr<const ArrayList> b;
  if (o.momentum != 0.0) {
    if (momentum_buffers.is_none()) c.value_error("momentum != 0 needs momentum_buffers");
    b.reset(new ArrayList(c, momentum_buffers, "momentum_buffers"));
    lc.same_length(*b, p);
  }
  const DType dt = p.size() ? lc.floating(p, 0) : DType::f32;
  for (size_t i = 0; i < p.size(); ++i) {
    lc.like(p, i, p, 0);
    lc.like(g, i, p, 0);
    if (b) lc.like(*b, i, p, 0);
    lc.layout(p, i, false);
    lc.layout(g, i, true);
    if (b) lc.layout(*b, i, false);
  }
  // No steps: every buffer is taken as already initialised (see sgd_step).
  const std::vector<int64_t> step_counts = steps.is_none()
                                               ? std::vector<int64_t>(p.size(), 0)
                                               : step_list(c, steps, "steps", p.size(), 1);
  lc.no_overlap({&p, b.get()}, {&g});

  if (dt == DType::f32)
    run_sgd_multi<float>(p, g, b.get(), step_counts, o);
  else
    run_sgd_multi<double>(p, g, b.get(), step_counts, o);
}

}  // namespace

void register_optim(py::module_& m) {
  m.def("adam_step", &adam_binding,
        "Positional core of trainkern.adam_step (see the Python wrapper for the contract).");
  m.def("sgd_step", &sgd_binding,
        "Positional core of trainkern.sgd_step (see the Python wrapper for the contract).");
  m.def("adam_step_multi", &adam_multi_binding,
        "Positional core of trainkern.adam_step_multi (see the Python wrapper).");
  m.def("sgd_step_multi", &sgd_multi_binding,
        "Positional core of trainkern.sgd_step_multi (see the Python wrapper).");
}

}  // namespace bind
}  // namespace tk
