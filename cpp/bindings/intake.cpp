#include "intake.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace tk {
namespace bind {
namespace {

// [lo, hi) byte range an array can touch, from its strides.
std::pair<uintptr_t, uintptr_t> extent(const py::array& a) {
  const auto base = reinterpret_cast<uintptr_t>(a.data());
  if (a.size() == 0) return {base, base};
  intptr_t lo = 0, hi = 0;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    const intptr_t step = static_cast<intptr_t>(a.strides(d)) * (a.shape(d) - 1);
    (step < 0 ? lo : hi) += step;
  }
  return {base + lo, base + hi + a.itemsize()};
}

py::object& intake_fn() {
  // Leaked on purpose: Python may finalise before static destructors run.
  static py::object* fn =
      new py::object(py::module_::import("trainkern._intake").attr("as_array"));
  return *fn;
}

}  // namespace

std::string shape_str(const py::array& a) {
  // Python's tuple spelling: (), (3,), (2, 3)
  std::ostringstream s;
  s << "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s << (d ? ", " : "") << a.shape(d);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}

bool same_view(const Arg& a, const Arg& b) {
  if (a.arr.data() != b.arr.data() || a.arr.ndim() != b.arr.ndim()) return false;
  // The stride of an axis of length 1 is never used, and exporters disagree on it
  // (a memoryview of a NumPy view reports the element size there).
  for (py::ssize_t d = 0; d < a.arr.ndim(); ++d)
    if (a.arr.shape(d) != b.arr.shape(d) ||
        (a.arr.shape(d) > 1 && a.arr.strides(d) != b.arr.strides(d)))
      return false;
  return true;
}

void contiguous_input(Arg& a) {
  // One extra pass. Alignment must be asked for: NumPy hands back a C-contiguous array at an
  // odd address as it is (the scalar target would then load misaligned doubles: UB).
  if (!(a.arr.flags() & py::array::c_style) ||
      reinterpret_cast<uintptr_t>(a.arr.data()) % a.arr.itemsize() != 0) {
    using api = py::detail::npy_api;
    PyObject* copy = api::get().PyArray_FromAny_(
        a.arr.ptr(), nullptr, 0, 0, api::NPY_ARRAY_C_CONTIGUOUS_ | api::NPY_ARRAY_ALIGNED_,
        nullptr);
    if (copy == nullptr) throw py::error_already_set();
    a.arr = py::reinterpret_steal<py::array>(copy);
  }
}

py::object output_like(const Checker& c, py::handle out, const Arg& like, Arg* o,
                       std::initializer_list<const Arg*> inputs, const Arg* inplace_ok) {
  if (out.is_none()) {
    *o = Arg{py::array(like.arr.dtype(), std::vector<py::ssize_t>(like.arr.shape(),
                                                                  like.arr.shape() + like.arr.ndim())),
             "out"};
    return o->arr;
  }
  *o = c.array(out, "out");
  c.same_dtype(*o, like);
  c.same_shape(*o, like);
  c.c_contiguous(*o);
  c.writeable(*o);
  for (const Arg* in : inputs)
    if (!((inplace_ok == nullptr || in == inplace_ok) && same_view(*o, *in))) c.no_overlap({o, in});
  return py::reinterpret_borrow<py::object>(out);
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

void Checker::type_error(const std::string& msg) const {
  throw py::type_error(std::string(fn_) + ": " + msg);
}
void Checker::value_error(const std::string& msg) const {
  throw py::value_error(std::string(fn_) + ": " + msg);
}

Arg Checker::array(py::handle obj, const char* name) const {
  if (obj.is_none()) type_error(std::string(name) + " must be an array, got None");
  if (py::isinstance<py::array>(obj)) return {py::reinterpret_borrow<py::array>(obj), name};
  py::object view = intake_fn()(obj, name, fn_);
  return {py::reinterpret_steal<py::array>(view.release()), name};
}

DType Checker::floating(const Arg& a) const {
  const char kind = a.arr.dtype().kind();
  const auto item = a.arr.itemsize();
  // '=' is native; '<' or '>' is explicit and native only when it matches this CPU.
  const char order = a.arr.dtype().byteorder();
  constexpr char native = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? '>' : '<';
  if (kind == 'f' && order != '=' && order != '|' && order != native)
    type_error(std::string(a.name) + " is not in native byte order (" + dtype_str(a.arr) +
               "); convert it with .astype(its dtype.newbyteorder('='))");
  if (kind == 'f' && item == 4) return DType::f32;
  if (kind == 'f' && item == 8) return DType::f64;
  type_error(std::string(a.name) + " must be float32 or float64, got " + dtype_str(a.arr));
}

void Checker::same_dtype(const Arg& a, const Arg& ref) const {
  if (!a.arr.dtype().is(ref.arr.dtype()) && !a.arr.dtype().equal(ref.arr.dtype()))
    type_error(std::string(a.name) + " has dtype " + dtype_str(a.arr) + " but " + ref.name +
               " has dtype " + dtype_str(ref.arr));
}

void Checker::same_shape(const Arg& a, const Arg& ref) const {
  bool same = a.arr.ndim() == ref.arr.ndim();
  for (py::ssize_t d = 0; same && d < a.arr.ndim(); ++d) same = a.arr.shape(d) == ref.arr.shape(d);
  if (!same)
    value_error(std::string(a.name) + " has shape " + shape_str(a.arr) + " but " + ref.name +
                " has shape " + shape_str(ref.arr));
}

void Checker::c_contiguous(const Arg& a) const {
  if (!(a.arr.flags() & py::array::c_style))
    value_error(std::string(a.name) +
                " must be C-contiguous (a strided view cannot be updated in one pass; "
                "pass a contiguous array)");
  if (reinterpret_cast<uintptr_t>(a.arr.data()) % a.arr.itemsize() != 0)
    value_error(std::string(a.name) + " is not aligned to its element size");
}

void Checker::writeable(const Arg& a) const {
  if (!a.arr.writeable()) value_error(std::string(a.name) + " is read-only; it is updated in place");
}

void Checker::no_overlap(std::initializer_list<const Arg*> args) const {
  for (auto i = args.begin(); i != args.end(); ++i) {
    if (*i == nullptr) continue;
    const auto ri = extent((*i)->arr);
    for (auto j = std::next(i); j != args.end(); ++j) {
      if (*j == nullptr) continue;
      const auto rj = extent((*j)->arr);
      if (ri.first < rj.second && rj.first < ri.second)
        value_error(std::string((*i)->name) + " and " + (*j)->name + " overlap in memory");
    }
  }
}

double Checker::finite(py::handle x, const char* name) const {
  if (x.is_none() || py::isinstance<py::bool_>(x))
    type_error(std::string(name) + " must be a real number, got " +
               py::str(x).cast<std::string>());
  double v;
  try {
    v = py::float_(py::reinterpret_borrow<py::object>(x)).cast<double>();
  } catch (const py::error_already_set&) {
    type_error(std::string(name) + " must be a real number, got " +
               py::str(py::type::of(x)).cast<std::string>());
  }
  if (!std::isfinite(v)) value_error(std::string(name) + " must be finite, got " + std::to_string(v));
  return v;
}

double Checker::in_range(py::handle x, const char* name, double lo, bool lo_open, double hi,
                         bool hi_open) const {
  const double v = finite(x, name);
  const bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  if (!ok) {
    std::ostringstream s;
    s << name << " must be in " << (lo_open ? "(" : "[") << lo << ", " << hi
      << (hi_open ? ")" : "]") << ", got " << v;
    value_error(s.str());
  }
  return v;
}

int64_t Checker::integer(py::handle x, const char* name, int64_t lo) const {
  if (py::isinstance<py::bool_>(x) || !PyIndex_Check(x.ptr()))
    type_error(std::string(name) + " must be an integer, got " +
               py::str(py::type::of(x)).cast<std::string>());
  py::object idx = py::reinterpret_steal<py::object>(PyNumber_Index(x.ptr()));
  if (!idx) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(idx.ptr(), &overflow);
  if (overflow != 0 || v < lo)
    value_error(std::string(name) + " must be >= " + std::to_string(lo) + ", got " +
                py::str(idx).cast<std::string>());
  return v;
}

bool Checker::boolean(py::handle x, const char* name) const {
  if (x.ptr() == Py_True) return true;
  if (x.ptr() == Py_False) return false;
  // numpy.bool_ and friends
  if (py::hasattr(x, "__bool__") && !PyLong_Check(x.ptr()) && !PyFloat_Check(x.ptr()) &&
      py::str(py::type::of(x).attr("__name__")).cast<std::string>().find("bool") !=
          std::string::npos)
    return py::cast<bool>(py::bool_(py::reinterpret_borrow<py::object>(x)));
  type_error(std::string(name) + " must be a bool, got " +
             py::str(py::type::of(x)).cast<std::string>());
}

}  // namespace bind
}  // namespace tk
