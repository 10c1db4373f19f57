// Array intake shared by every binding: accept any array-like without a copy, then check
// dtype, shape, layout, writeability and overlap, raising TypeError/ValueError that name
// the function and the argument. Nothing is written before every check has passed.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

namespace tk {
namespace bind {

namespace py = pybind11;

enum class DType { f32, f64 };

// An argument seen as an ndarray: `obj` itself when it is one, otherwise a zero-copy view
// made by trainkern._intake.as_array (torch tensors, __dlpack__, buffer protocol).
struct Arg {
  py::array arr;
  const char* name;
  // An absent optional argument: no array behind it.
  static Arg none(const char* name) { return {py::reinterpret_steal<py::array>(py::handle()), name}; }
  void* data() const { return const_cast<void*>(arr.data()); }
  int64_t size() const { return static_cast<int64_t>(arr.size()); }
};

class Checker {
 public:
  explicit Checker(const char* fn) : fn_(fn) {}

  Arg array(py::handle obj, const char* name) const;
  // Returns the dtype; float32 and float64 only.
  DType floating(const Arg& a) const;
  void same_dtype(const Arg& a, const Arg& ref) const;
  void same_shape(const Arg& a, const Arg& ref) const;
  void c_contiguous(const Arg& a) const;
  void writeable(const Arg& a) const;
  // In-place outputs must not share memory with each other or with any input.
  void no_overlap(std::initializer_list<const Arg*> args) const;

  double finite(py::handle x, const char* name) const;
  double in_range(py::handle x, const char* name, double lo, bool lo_open, double hi,
                  bool hi_open) const;
  int64_t integer(py::handle x, const char* name, int64_t lo) const;
  bool boolean(py::handle x, const char* name) const;

  [[noreturn]] void type_error(const std::string& msg) const;
  [[noreturn]] void value_error(const std::string& msg) const;

 private:
  const char* fn_;
};

// The very same array view (in-place use), as opposed to memory that merely overlaps.
bool same_view(const Arg& a, const Arg& b);
// Replaces an input of any layout by a C-contiguous, aligned copy when it is not one already.
void contiguous_input(Arg& a);
// An elementwise result buffer shaped and typed like `like`: `out` checked (dtype, shape,
// C-contiguous, writeable; disjoint from every one of `inputs` except that it may be the very
// same view as `inplace_ok`, or as any input when `inplace_ok` is null), or a new C-contiguous
// array when `out` is None. Sets *o and returns the object to hand back.
py::object output_like(const Checker& c, py::handle out, const Arg& like, Arg* o,
                       std::initializer_list<const Arg*> inputs, const Arg* inplace_ok);

std::string shape_str(const py::array& a);
std::string dtype_str(const py::array& a);

}  // namespace bind
}  // namespace tk
