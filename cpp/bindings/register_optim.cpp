// Bindings of the optimizer kernels: validate every argument, then release the GIL and run.
#include <cmath>

#include "intake.h"
#include "trainkern/kernels.h"

namespace tk {
namespace bind {

namespace {

void adam_binding(py::handle param, py::handle grad, py::handle exp_avg, py::handle exp_avg_sq,
                  py::handle max_exp_avg_sq, py::handle step, py::handle lr, py::handle beta1,
                  py::handle beta2, py::handle eps, py::handle weight_decay,
                  py::handle decoupled, py::handle amsgrad, py::handle maximize,
                  py::handle grad_scale) {
  const Checker c("adam_step");
  AdamOptions o;
  o.step = c.integer(step, "step", 1);
  o.lr = c.in_range(lr, "lr", 0.0, false, INFINITY, false);
  o.beta1 = c.in_range(beta1, "beta1", 0.0, false, 1.0, true);
  o.beta2 = c.in_range(beta2, "beta2", 0.0, false, 1.0, true);
  o.eps = c.in_range(eps, "eps", 0.0, true, INFINITY, false);
  o.weight_decay = c.in_range(weight_decay, "weight_decay", 0.0, false, INFINITY, false);
  o.decoupled_weight_decay = c.boolean(decoupled, "decoupled_weight_decay");
  o.amsgrad = c.boolean(amsgrad, "amsgrad");
  o.maximize = c.boolean(maximize, "maximize");
  if (!grad_scale.is_none()) {
    o.grad_scale = c.in_range(grad_scale, "grad_scale", 0.0, true, INFINITY, false);
    o.has_grad_scale = true;
  }

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

}  // namespace

void register_optim(py::module_& m) {
  m.def("adam_step", &adam_binding,
        "Positional core of trainkern.adam_step (see the Python wrapper for the contract).");
  m.def("sgd_step", &sgd_binding,
        "Positional core of trainkern.sgd_step (see the Python wrapper for the contract).");
}

}  // namespace bind
}  // namespace tk
