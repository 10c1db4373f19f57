// Bindings of the loss kernels: validate every argument (labels included, naming the first
// bad row), then release the GIL and run.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "intake.h"
#include "trainkern/kernels.h"

namespace tk {
namespace bind {

namespace {

Reduction parse_reduction(const Checker& c, py::handle r) {
  if (py::isinstance<py::str>(r)) {
    const auto s = r.cast<std::string>();
    if (s == "mean") return Reduction::mean;
    if (s == "sum") return Reduction::sum;
    if (s == "none") return Reduction::none;
  }
  c.value_error("reduction must be 'mean', 'sum' or 'none', got " +
                py::repr(r).cast<std::string>());
}

py::object scalar_of(DType dt, double v) {
  // a NumPy scalar of the input's dtype, as numpy reductions return; the types are looked up
  // once (kept for the life of the process)
  static const py::handle f32 = py::object(py::module_::import("numpy").attr("float32")).release();
  static const py::handle f64 = py::object(py::module_::import("numpy").attr("float64")).release();
  return (dt == DType::f32 ? f32 : f64)(v);
}

py::tuple cross_entropy_binding(py::handle logits, py::handle labels, py::handle reduction,
                                py::handle label_smoothing, py::handle ignore_index,
                                py::handle compute_grad, py::handle out) {
  const Checker c("softmax_cross_entropy");
  CrossEntropyOptions o;
  o.reduction = parse_reduction(c, reduction);
  o.label_smoothing = c.in_range(label_smoothing, "label_smoothing", 0.0, false, 1.0, false);
  o.ignore_index = c.integer(ignore_index, "ignore_index", INT64_MIN);
  const bool want_grad = c.boolean(compute_grad, "compute_grad");
  if (!want_grad && !out.is_none()) c.value_error("out is only written with compute_grad=True");

  Arg x = c.array(logits, "logits");
  const DType dt = c.floating(x);
  if (x.arr.ndim() != 2)
    c.value_error("logits must have shape (N, C), got " + shape_str(x.arr));
  const int64_t n = x.arr.shape(0), k = x.arr.shape(1);
  if (k < 1) c.value_error("logits must have at least one class, got shape " + shape_str(x.arr));

  Arg lab = c.array(labels, "labels");
  const char kind = lab.arr.dtype().kind();
  const bool index_labels = lab.arr.ndim() == 1 && (kind == 'i' || kind == 'u');
  const bool prob_labels = lab.arr.ndim() == 2 && kind == 'f';
  if (!index_labels && !prob_labels)
    c.type_error("labels must be integer class indices of shape (N,) or probabilities of "
                 "shape (N, C); got dtype " + dtype_str(lab.arr) + " and shape " +
                 shape_str(lab.arr));
  // Class indices as contiguous int64: the array itself when it is one, else a converted copy
  // (any integer dtype and layout).
  py::array_t<int64_t> idx;
  if (index_labels) {
    if (lab.arr.shape(0) != n)
      c.value_error("labels has shape " + shape_str(lab.arr) + " but logits has " +
                    std::to_string(n) + " rows");
    idx = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(lab.arr);
    if (!idx) throw py::error_already_set();
    if (reinterpret_cast<uintptr_t>(idx.data()) % alignof(int64_t) != 0) {
      // An int64 view at an odd address: read through an aligned copy.
      py::array_t<int64_t> aligned(static_cast<py::ssize_t>(n));
      std::memcpy(aligned.mutable_data(), idx.data(), static_cast<size_t>(n) * sizeof(int64_t));
      idx = aligned;
    }
    const int64_t bad = check_class_labels(idx.data(), n, k, o.ignore_index, &o.count);
    if (bad >= 0)
      c.value_error("labels[" + std::to_string(bad) + "] = " + std::to_string(idx.data()[bad]) +
                    " is out of range [0, " + std::to_string(k) + ") and is not ignore_index (" +
                    std::to_string(o.ignore_index) + ")");
  } else {
    c.same_dtype(lab, x);
    c.same_shape(lab, x);
  }

  Arg g = Arg::none("out");
  py::object grad_obj = py::none();
  if (want_grad) grad_obj = output_like(c, out, x, &g, {&x, &lab}, &x);
  Arg xin = x, pin = lab;
  if (!(want_grad && same_view(g, x))) contiguous_input(xin);
  if (prob_labels) contiguous_input(pin);

  Arg rows = Arg::none("loss");
  if (o.reduction == Reduction::none)
    rows = Arg{py::array(x.arr.dtype(), std::vector<py::ssize_t>{static_cast<py::ssize_t>(n)}), "loss"};
  const void* xp = xin.data();
  const void* pp = prob_labels ? pin.data() : nullptr;
  void* gp = want_grad ? g.data() : nullptr;
  void* rp = o.reduction == Reduction::none ? rows.data() : nullptr;
  const int64_t* ip = index_labels ? idx.data() : nullptr;
  double total;
  {
    py::gil_scoped_release release;
    if (dt == DType::f32)
      total = softmax_cross_entropy(static_cast<const float*>(xp), ip,
                                    static_cast<const float*>(pp), n, k, static_cast<float*>(rp),
                                    static_cast<float*>(gp), o);
    else
      total = softmax_cross_entropy(static_cast<const double*>(xp), ip,
                                    static_cast<const double*>(pp), n, k,
                                    static_cast<double*>(rp), static_cast<double*>(gp), o);
  }
  py::object loss = o.reduction == Reduction::none ? py::object(rows.arr) : scalar_of(dt, total);
  return py::make_tuple(loss, grad_obj);
}

py::tuple mse_binding(py::handle pred, py::handle target, py::handle reduction,
                      py::handle compute_grad, py::handle out) {
  const Checker c("mse_loss");
  const Reduction r = parse_reduction(c, reduction);
  const bool want_grad = c.boolean(compute_grad, "compute_grad");
  if (!want_grad && !out.is_none()) c.value_error("out is only written with compute_grad=True");
  Arg p = c.array(pred, "pred");
  Arg t = c.array(target, "target");
  const DType dt = c.floating(p);
  c.same_dtype(t, p);
  c.same_shape(t, p);
  Arg g = Arg::none("out");
  py::object grad_obj = py::none();
  if (want_grad) {
    // out may be pred itself (or target itself), never a partial overlap
    grad_obj = output_like(c, out, p, &g, {&p}, &p);
    if (!same_view(g, t)) c.no_overlap({&g, &t});
  }
  Arg pin = p, tin = t;
  if (!(want_grad && same_view(g, p))) contiguous_input(pin);
  if (!(want_grad && same_view(g, t))) contiguous_input(tin);
  Arg elems = Arg::none("loss");
  if (r == Reduction::none)
    elems = Arg{py::array(p.arr.dtype(), std::vector<py::ssize_t>(p.arr.shape(),
                                                                  p.arr.shape() + p.arr.ndim())),
                "loss"};
  const int64_t n = p.size();
  const void* pp = pin.data();
  const void* tp = tin.data();
  void* gp = want_grad ? g.data() : nullptr;
  void* ep = r == Reduction::none ? elems.data() : nullptr;
  double total;
  {
    py::gil_scoped_release release;
    if (dt == DType::f32)
      total = mse_loss(static_cast<const float*>(pp), static_cast<const float*>(tp), n, r,
                       static_cast<float*>(ep), static_cast<float*>(gp));
    else
      total = mse_loss(static_cast<const double*>(pp), static_cast<const double*>(tp), n, r,
                       static_cast<double*>(ep), static_cast<double*>(gp));
  }
  py::object loss = r == Reduction::none ? py::object(elems.arr) : scalar_of(dt, total);
  return py::make_tuple(loss, grad_obj);
}

}  // namespace

void register_losses(py::module_& m) {
  m.def("softmax_cross_entropy", &cross_entropy_binding,
        "Positional core of trainkern.softmax_cross_entropy: (logits, labels, reduction, "
        "label_smoothing, ignore_index, compute_grad, out) -> (loss, grad).");
  m.def("mse_loss", &mse_binding,
        "Positional core of trainkern.mse_loss: (pred, target, reduction, compute_grad, out) "
        "-> (loss, grad).");
}

}  // namespace bind
}  // namespace tk
