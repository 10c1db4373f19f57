// Bindings of the activation kernels and the vmath test hook.
#include <cstring>
#include <string>

#include "intake.h"
#include "ops/vmath.h"
#include "trainkern/kernels.h"

namespace tk {
namespace bind {

namespace {

// Same order as tk::VmathFn.
const char* const kVmathNames[] = {"exp",      "expm1",         "erf",
                                   "erfc",     "sigmoid",       "tanh",
                                   "gelu_erf", "gelu_tanh",     "silu",
                                   "gelu_erf_grad", "gelu_tanh_grad", "silu_grad"};
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
  m.def("_vmath_eval", &vmath_eval, py::arg("name"), py::arg("x"),
        "Test hook: one vectorised math function (exp, erf, gelu_erf_grad, ...) elementwise.");
}

}  // namespace bind
}  // namespace tk
