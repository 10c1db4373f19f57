// Bindings of the activation kernels and the vmath test hook.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "intake.h"
#include "ops/vmath.h"
#include "trainkern/kernels.h"

namespace tk {
namespace bind {

namespace {

// Indexed by tk::Activation: the public names, for error messages.
const char* const kForwardNames[] = {"relu", "leaky_relu", "sigmoid", "tanh",
                                     "gelu", "gelu",       "silu"};
const char* const kBackwardNames[] = {"relu_backward", "leaky_relu_backward",
                                      "sigmoid_backward", "tanh_backward",
                                      "gelu_backward", "gelu_backward", "silu_backward"};
constexpr int kNumActivations = 7;

Activation checked_act(int act) {
  if (act < 0 || act >= kNumActivations)
    throw py::value_error("activation code out of range: " + std::to_string(act));
  return static_cast<Activation>(act);
}

py::object forward_binding(int code, py::handle x, py::handle out, py::handle negative_slope) {
  const Activation act = checked_act(code);
  const Checker c(kForwardNames[code]);
  Arg xa = c.array(x, "x");
  const DType dt = c.floating(xa);
  double slope = 0.0;
  if (act == Activation::leaky_relu) slope = c.finite(negative_slope, "negative_slope");
  Arg oa = Arg::none("out");
  Arg xin = xa;
  py::object result = output_like(c, out, xa, &oa, {&xa}, nullptr);
  // In place needs no copy: out passed the C-contiguity check and is x.
  if (!same_view(oa, xa)) contiguous_input(xin);
  const int64_t n = xa.size();
  const void* xp = xin.data();
  void* yp = oa.data();
  {
    py::gil_scoped_release release;
    if (dt == DType::f32)
      activation_forward(act, static_cast<const float*>(xp), static_cast<float*>(yp), n,
                         static_cast<float>(slope));
    else
      activation_forward(act, static_cast<const double*>(xp), static_cast<double*>(yp), n, slope);
  }
  return result;
}

py::object backward_binding(int code, py::handle grad_y, py::handle v, py::handle out,
                            py::handle negative_slope) {
  const Activation act = checked_act(code);
  const Checker c(kBackwardNames[code]);
  const bool from_y = act == Activation::sigmoid || act == Activation::tanh;
  Arg ga = c.array(grad_y, "grad_y");
  Arg va = c.array(v, from_y ? "y" : "x");
  const DType dt = c.floating(ga);
  c.same_dtype(va, ga);
  c.same_shape(va, ga);
  double slope = 0.0;
  if (act == Activation::leaky_relu) slope = c.finite(negative_slope, "negative_slope");
  Arg oa = Arg::none("out");
  py::object result = output_like(c, out, ga, &oa, {&ga, &va}, nullptr);
  Arg gin = ga, vin = va;
  if (!same_view(oa, ga)) contiguous_input(gin);
  if (!same_view(oa, va)) contiguous_input(vin);
  const int64_t n = ga.size();
  const void* gp = gin.data();
  const void* vp = vin.data();
  void* op = oa.data();
  {
    py::gil_scoped_release release;
    if (dt == DType::f32)
      activation_backward(act, static_cast<const float*>(gp), static_cast<const float*>(vp),
                          static_cast<float*>(op), n, static_cast<float>(slope));
    else
      activation_backward(act, static_cast<const double*>(gp), static_cast<const double*>(vp),
                          static_cast<double*>(op), n, slope);
  }
  return result;
}

// Same order as tk::VmathFn.
const char* const kVmathNames[] = {"exp",      "expm1",         "erf",
                                   "erfc",     "sigmoid",       "tanh",
                                   "gelu_erf", "gelu_tanh",     "silu",
                                   "gelu_erf_grad", "gelu_tanh_grad", "silu_grad",
                                   "log",      "log1p"};
static_assert(sizeof(kVmathNames) / sizeof(kVmathNames[0]) == static_cast<int>(VmathFn::count),
              "one name per VmathFn");

py::array vmath_eval(const std::string& name, py::handle x) {
  const Checker c("_vmath_eval");
  int fn = 0;
  while (fn < static_cast<int>(VmathFn::count) && name != kVmathNames[fn]) ++fn;
  if (fn == static_cast<int>(VmathFn::count)) c.value_error("unknown function '" + name + "'");
  Arg a = c.array(x, "x");
  const DType dt = c.floating(a);
  c.c_contiguous(a);
  py::array out(a.arr.dtype(), std::vector<py::ssize_t>(a.arr.shape(), a.arr.shape() + a.arr.ndim()));
  const int64_t n = a.size();
  void* y = out.mutable_data();
  py::gil_scoped_release release;
  if (dt == DType::f32)
    TK_ACTIVE(vmath_table).eval_f32(static_cast<VmathFn>(fn), static_cast<const float*>(a.data()),
                                    static_cast<float*>(y), n);
  else
    TK_ACTIVE(vmath_table).eval_f64(static_cast<VmathFn>(fn), static_cast<const double*>(a.data()),
                                    static_cast<double*>(y), n);
  return out;
}

}  // namespace

void register_activations(py::module_& m) {
  m.def("activation", &forward_binding,
        "Positional core of trainkern.relu/sigmoid/tanh/gelu/silu/leaky_relu: "
        "(code, x, out, negative_slope) -> out.");
  m.def("activation_backward", &backward_binding,
        "Positional core of trainkern.*_backward: (code, grad_y, x_or_y, out, negative_slope) "
        "-> grad_x.");
  m.def("_vmath_eval", &vmath_eval, py::arg("name"), py::arg("x"),
        "Test hook: one vectorised math function (exp, erf, gelu_erf_grad, ...) elementwise.");
}

}  // namespace bind
}  // namespace tk
