// Bindings of matmul, linear and linear_backward: every operand is taken as it lies
// (any strides: transposed views are read through the packing), all checks run before
// anything is written, then the GIL is released around the kernel.
#include <cstdint>
#include <string>
#include <vector>

#include "intake.h"
#include "trainkern/kernels.h"

namespace tk {
namespace bind {

namespace {

// A 2-D operand seen through element strides.
struct Mat {
  Arg arg;
  int64_t rows = 0, cols = 0, rs = 0, cs = 0;
};

int64_t elem_stride(const Checker& c, const Arg& a, int d) {
  const int64_t s = static_cast<int64_t>(a.arr.strides(d));
  if (s % static_cast<int64_t>(a.arr.itemsize()) != 0)
    c.value_error(std::string(a.name) + " has a stride that is not a multiple of its element size");
  return s / static_cast<int64_t>(a.arr.itemsize());
}

void aligned(const Checker& c, const Arg& a) {
  if (reinterpret_cast<uintptr_t>(a.arr.data()) % a.arr.itemsize() != 0)
    c.value_error(std::string(a.name) + " is not aligned to its element size");
}

Mat matrix(const Checker& c, py::handle obj, const char* name) {
  Mat m;
  m.arg = c.array(obj, name);
  if (m.arg.arr.ndim() != 2)
    c.value_error(std::string(name) + " must be 2-D, got shape " + shape_str(m.arg.arr));
  m.rows = m.arg.arr.shape(0);
  m.cols = m.arg.arr.shape(1);
  m.rs = elem_stride(c, m.arg, 0);
  m.cs = elem_stride(c, m.arg, 1);
  aligned(c, m.arg);
  return m;
}

void want_shape(const Checker& c, const Mat& m, int64_t rows, int64_t cols) {
  if (m.rows != rows || m.cols != cols)
    c.value_error(std::string(m.arg.name) + " must have shape (" + std::to_string(rows) + ", " +
                  std::to_string(cols) + "), got " + shape_str(m.arg.arr));
}

// An output: right shape and dtype, writeable, unit column stride, rows not overlapping.
Mat output(const Checker& c, py::handle obj, const char* name, const Arg& ref, int64_t rows,
           int64_t cols) {
  Mat m = matrix(c, obj, name);
  c.same_dtype(m.arg, ref);
  want_shape(c, m, rows, cols);
  c.writeable(m.arg);
  if (cols <= 1) m.cs = 1;
  if (m.cs != 1 && rows > 0)
    c.value_error(std::string(name) +
                  " must have contiguous rows (unit column stride); a transposed output is "
                  "not supported");
  if (rows > 1 && cols > 0 && (m.rs < 0 ? -m.rs : m.rs) < cols)
    c.value_error(std::string(name) + " has rows that overlap each other");
  return m;
}

Mat fresh(const Arg& ref, int64_t rows, int64_t cols, const char* name) {
  Mat m;
  m.arg = {py::array(ref.arr.dtype(), std::vector<py::ssize_t>{rows, cols}), name};
  m.rows = rows;
  m.cols = cols;
  m.rs = cols;
  m.cs = 1;
  return m;
}

LinearAct activation(const Checker& c, py::handle a) {
  if (a.is_none()) return LinearAct::none;
  if (!py::isinstance<py::str>(a))
    c.type_error("activation must be None or a string, got " +
                 py::str(py::type::of(a)).cast<std::string>());
  const std::string s = a.cast<std::string>();
  static const char* names[] = {"relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu"};
  for (int i = 0; i < 6; ++i)
    if (s == names[i]) return static_cast<LinearAct>(i + 1);
  c.value_error("activation must be None, 'relu', 'sigmoid', 'tanh', 'gelu', 'gelu_tanh' or "
                "'silu', got '" + s + "'");
}

template <class T>
LinearArgs<T> linear_args(const Mat& x, const Mat& w, const Arg* bias, int64_t bias_stride,
                          Mat& y, Mat* pre, LinearAct act) {
  LinearArgs<T> a;
  a.m = x.rows;
  a.k = x.cols;
  a.n = w.cols;
  a.x = static_cast<const T*>(x.arg.data());
  a.x_rs = x.rs;
  a.x_cs = x.cs;
  a.w = static_cast<const T*>(w.arg.data());
  a.w_rs = w.rs;
  a.w_cs = w.cs;
  a.bias = bias ? static_cast<const T*>(bias->data()) : nullptr;
  a.bias_stride = bias_stride;
  a.y = static_cast<T*>(y.arg.data());
  a.y_rs = y.rs;
  a.preact = pre ? static_cast<T*>(pre->arg.data()) : nullptr;
  a.preact_rs = pre ? pre->rs : 0;
  a.act = act;
  return a;
}

// y = act(x·w + bias) into `out` or a new array; returns y, or (y, preact).
py::object linear_core(const char* fn, py::handle x_obj, py::handle w_obj, py::handle b_obj,
                       py::handle act_obj, py::handle out_obj, py::handle ret_pre_obj) {
  const Checker c(fn);
  const LinearAct act = activation(c, act_obj);
  const bool ret_pre = c.boolean(ret_pre_obj, "return_preact");
  Mat x = matrix(c, x_obj, fn[0] == 'm' ? "a" : "x");
  Mat w = matrix(c, w_obj, fn[0] == 'm' ? "b" : "weight");
  c.floating(x.arg);
  c.same_dtype(w.arg, x.arg);
  if (w.rows != x.cols)
    c.value_error(std::string(w.arg.name) + " has shape " + shape_str(w.arg.arr) + " but " +
                  x.arg.name + " has shape " + shape_str(x.arg.arr) + ": the inner sizes differ");
  const int64_t m = x.rows, n = w.cols;
  Arg bias = Arg::none("bias");
  int64_t bias_stride = 1;
  if (!b_obj.is_none()) {
    bias = c.array(b_obj, "bias");
    c.same_dtype(bias, x.arg);
    if (bias.arr.ndim() != 1 || bias.arr.shape(0) != n)
      c.value_error("bias must have shape (" + std::to_string(n) + ",), got " +
                    shape_str(bias.arr));
    bias_stride = elem_stride(c, bias, 0);
    aligned(c, bias);
  }
  Mat y;
  if (out_obj.is_none()) {
    y = fresh(x.arg, m, n, "out");
  } else {
    y = output(c, out_obj, "out", x.arg, m, n);
    // out against each input; the inputs may share memory (a @ a, x @ x.T): they are only read
    for (const Arg* in : {&x.arg, &w.arg, b_obj.is_none() ? nullptr : &bias})
      if (in) c.no_overlap({&y.arg, in});
  }
  Mat pre;
  if (ret_pre) pre = fresh(x.arg, m, n, "preact");
  const bool f64 = x.arg.arr.itemsize() == 8;
  const Arg* bp = b_obj.is_none() ? nullptr : &bias;
  {
    py::gil_scoped_release release;
    if (f64)
      linear(linear_args<double>(x, w, bp, bias_stride, y, ret_pre ? &pre : nullptr, act));
    else
      linear(linear_args<float>(x, w, bp, bias_stride, y, ret_pre ? &pre : nullptr, act));
  }
  py::object yo = out_obj.is_none() ? py::object(y.arg.arr) : py::reinterpret_borrow<py::object>(out_obj);
  if (ret_pre) return py::make_tuple(yo, pre.arg.arr);
  return yo;
}

template <class T>
void backward_run(const Mat& gy, const Mat& x, const Mat& w, const Mat* src, bool from_pre,
                  LinearAct act, Mat* gx, Mat& gw, Arg& gb) {
  LinearBackwardArgs<T> a;
  a.m = x.rows;
  a.k = x.cols;
  a.n = w.cols;
  a.grad_y = static_cast<const T*>(gy.arg.data());
  a.gy_rs = gy.rs;
  a.gy_cs = gy.cs;
  a.x = static_cast<const T*>(x.arg.data());
  a.x_rs = x.rs;
  a.x_cs = x.cs;
  a.w = static_cast<const T*>(w.arg.data());
  a.w_rs = w.rs;
  a.w_cs = w.cs;
  if (src) {
    a.act_src = static_cast<const T*>(src->arg.data());
    a.src_rs = src->rs;
    a.src_cs = src->cs;
  }
  a.from_preact = from_pre;
  a.act = act;
  a.grad_x = gx ? static_cast<T*>(gx->arg.data()) : nullptr;
  a.grad_w = static_cast<T*>(gw.arg.data());
  a.grad_b = static_cast<T*>(gb.data());
  py::gil_scoped_release release;
  linear_backward(a);
}

py::object backward_core(py::handle gy_obj, py::handle x_obj, py::handle w_obj,
                         py::handle act_obj, py::handle y_obj, py::handle pre_obj,
                         py::handle need_gx_obj) {
  const Checker c("linear_backward");
  const LinearAct act = activation(c, act_obj);
  const bool need_gx = c.boolean(need_gx_obj, "need_grad_x");
  Mat gy = matrix(c, gy_obj, "grad_y");
  Mat x = matrix(c, x_obj, "x");
  Mat w = matrix(c, w_obj, "weight");
  c.floating(x.arg);
  c.same_dtype(gy.arg, x.arg);
  c.same_dtype(w.arg, x.arg);
  if (w.rows != x.cols)
    c.value_error("weight has shape " + shape_str(w.arg.arr) + " but x has shape " +
                  shape_str(x.arg.arr) + ": the inner sizes differ");
  const int64_t m = x.rows, k = x.cols, n = w.cols;
  want_shape(c, gy, m, n);
  // relu, sigmoid and tanh take the derivative from y (or preact); the others need preact.
  const bool invertible =
      act == LinearAct::relu || act == LinearAct::sigmoid || act == LinearAct::tanh;
  Mat src;
  bool from_pre = false;
  if (act != LinearAct::none) {
    if (!invertible && pre_obj.is_none())
      c.value_error("activation '" + act_obj.cast<std::string>() +
                    "' is not invertible: pass preact (linear(..., return_preact=True))");
    if (invertible && y_obj.is_none() && pre_obj.is_none())
      c.value_error("activation '" + act_obj.cast<std::string>() + "' needs y or preact");
    from_pre = !invertible || y_obj.is_none();
    src = matrix(c, from_pre ? pre_obj : y_obj, from_pre ? "preact" : "y");
    c.same_dtype(src.arg, x.arg);
    want_shape(c, src, m, n);
  }
  Mat gx;
  if (need_gx) gx = fresh(x.arg, m, k, "grad_x");
  Mat gw = fresh(x.arg, k, n, "grad_weight");
  Arg gb{py::array(x.arg.arr.dtype(), std::vector<py::ssize_t>{n}), "grad_bias"};
  const Mat* sp = act != LinearAct::none ? &src : nullptr;
  if (x.arg.arr.itemsize() == 8)
    backward_run<double>(gy, x, w, sp, from_pre, act, need_gx ? &gx : nullptr, gw, gb);
  else
    backward_run<float>(gy, x, w, sp, from_pre, act, need_gx ? &gx : nullptr, gw, gb);
  return py::make_tuple(need_gx ? py::object(gx.arg.arr) : py::object(py::none()), gw.arg.arr,
                        gb.arr);
}

}  // namespace

void register_linear(py::module_& m) {
  m.def(
      "matmul",
      [](py::handle a, py::handle b, py::handle out) {
        return linear_core("matmul", a, b, py::none(), py::none(), out, py::bool_(false));
      },
      "Positional core of trainkern.matmul (see the Python wrapper for the contract).");
  m.def(
      "linear",
      [](py::handle x, py::handle w, py::handle bias, py::handle act, py::handle out,
         py::handle ret_pre) { return linear_core("linear", x, w, bias, act, out, ret_pre); },
      "Positional core of trainkern.linear (see the Python wrapper for the contract).");
  m.def("linear_backward", &backward_core,
        "Positional core of trainkern.linear_backward (see the Python wrapper for the contract).");
}

}  // namespace bind
}  // namespace tk
