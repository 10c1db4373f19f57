#include "intake_list.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tk {
namespace bind {
namespace {

std::string entry_name(const char* list, size_t i) {
  return std::string(list) + "[" + std::to_string(i) + "]";
}

// The array fields read on the fast paths, straight from NumPy's array struct: the
// py::array accessors each take a new reference or go through NumPy's C-API table, which
// adds up over thousands of entries per call.
const py::detail::PyArray_Proxy* raw(const py::array& a) { return py::detail::array_proxy(a.ptr()); }

bool same_dtype(const py::array& a, const py::array& b) {
  // Arrays of a builtin type share one descriptor object: pointer equality is the usual case.
  return raw(a)->descr == raw(b)->descr || a.dtype().equal(b.dtype());
}

bool same_shape(const py::array& a, const py::array& b) {
  const int nd = raw(a)->nd;
  return nd == raw(b)->nd &&
         (nd == 0 || std::memcmp(raw(a)->dimensions, raw(b)->dimensions,
                                 sizeof(py::ssize_t) * static_cast<size_t>(nd)) == 0);
}

int64_t element_count(const py::array& a) {
  int64_t n = 1;
  for (int d = 0; d < raw(a)->nd; ++d) n *= raw(a)->dimensions[d];
  return n;
}

}  // namespace

ArrayList::ArrayList(const Checker& c, py::handle seq, const char* name) : name_(name) {
  if (!PyList_Check(seq.ptr()) && !PyTuple_Check(seq.ptr()))
    c.type_error(std::string(name) + " must be a list or tuple of arrays, got " +
                 py::str(py::type::of(seq).attr("__name__")).cast<std::string>());
  const bool is_list = PyList_Check(seq.ptr());
  const py::ssize_t n = is_list ? PyList_GET_SIZE(seq.ptr()) : PyTuple_GET_SIZE(seq.ptr());
  items_.reserve(static_cast<size_t>(n));
  for (py::ssize_t i = 0; i < n; ++i) {
    py::handle item = is_list ? PyList_GET_ITEM(seq.ptr(), i) : PyTuple_GET_ITEM(seq.ptr(), i);
    if (py::isinstance<py::array>(item)) {
      items_.push_back(py::reinterpret_borrow<py::array>(item));
    } else {
      const std::string nm = entry_name(name, static_cast<size_t>(i));
      items_.push_back(c.array(item, nm.c_str()).arr);
    }
  }
}

Arg ArrayList::arg(size_t i, std::string& storage) const {
  storage = entry_name(name_, i);
  return {items_[i], storage.c_str()};
}

void ListChecker::same_length(const ArrayList& l, const ArrayList& ref) const {
  if (l.size() != ref.size())
    c_.value_error(std::string(l.name()) + " has " + std::to_string(l.size()) + " entries but " +
                   ref.name() + " has " + std::to_string(ref.size()));
}

DType ListChecker::floating(const ArrayList& l, size_t i) const {
  std::string nm;
  return c_.floating(l.arg(i, nm));
}

void ListChecker::like(const ArrayList& l, size_t i, const ArrayList& ref, size_t j) const {
  if (!same_dtype(l[i], ref[j])) {
    std::string a, b;
    c_.same_dtype(l.arg(i, a), ref.arg(j, b));
  }
  if (!same_shape(l[i], ref[i])) {
    std::string a, b;
    c_.same_shape(l.arg(i, a), ref.arg(i, b));
  }
}

void ListChecker::layout(const ArrayList& l, size_t i, bool read_only) const {
  const py::array& a = l[i];
  const int flags = raw(a)->flags;
  // Alignment to the element size: NumPy's ALIGNED flag.
  constexpr int kAligned = 0x0100;
  if (!(flags & py::array::c_style) || !(flags & kAligned)) {
    std::string nm;
    c_.c_contiguous(l.arg(i, nm));
  }
  if (!read_only && !(flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_)) {
    std::string nm;
    c_.writeable(l.arg(i, nm));
  }
}

void ListChecker::no_overlap(std::initializer_list<const ArrayList*> written,
                             std::initializer_list<const ArrayList*> read) const {
  // Order every array's byte range by start, then sweep once, remembering the range that
  // reaches furthest among all arrays and among written ones: a written array overlaps an
  // earlier one iff it starts before the first reach ends, a read-only one iff it starts
  // before the second does. Each list is usually already in address order (allocation
  // order), so the lists are sorted on their own when needed and then merged: close to
  // linear time for the thousands of ranges of a large model.
  struct Range {
    uintptr_t lo, hi;
    const ArrayList* list;
    size_t index;
    bool written;
  };
  const auto by_start = [](const Range& a, const Range& b) { return a.lo < b.lo; };
  std::vector<Range> ranges;
  size_t total = 0;
  for (const ArrayList* l : written) total += l ? l->size() : 0;
  for (const ArrayList* l : read) total += l ? l->size() : 0;
  ranges.reserve(total);
  auto add = [&](const ArrayList* l, bool w) {
    if (l == nullptr) return;
    const size_t first = ranges.size();
    for (size_t i = 0; i < l->size(); ++i) {
      const py::array& a = (*l)[i];
      const int64_t n = element_count(a);
      if (n == 0) continue;
      const auto lo = reinterpret_cast<uintptr_t>(raw(a)->data);
      const auto bytes = static_cast<uintptr_t>(n) * static_cast<uintptr_t>(a.itemsize());
      ranges.push_back({lo, lo + bytes, l, i, w});
    }
    if (!std::is_sorted(ranges.begin() + first, ranges.end(), by_start))
      std::sort(ranges.begin() + first, ranges.end(), by_start);
    if (first != 0)
      std::inplace_merge(ranges.begin(), ranges.begin() + first, ranges.end(), by_start);
  };
  for (const ArrayList* l : written) add(l, true);
  for (const ArrayList* l : read) add(l, false);
  const Range* reach_all = nullptr;
  const Range* reach_written = nullptr;
  for (const Range& r : ranges) {
    const Range* hit = nullptr;
    if (r.written && reach_all && r.lo < reach_all->hi) hit = reach_all;
    if (!r.written && reach_written && r.lo < reach_written->hi) hit = reach_written;
    if (hit) {
      // Name the earlier entry first, as the single-tensor check does for its arguments.
      c_.value_error(entry_name(hit->list->name(), hit->index) + " and " +
                     entry_name(r.list->name(), r.index) + " overlap in memory");
    }
    if (!reach_all || r.hi > reach_all->hi) reach_all = &r;
    if (r.written && (!reach_written || r.hi > reach_written->hi)) reach_written = &r;
  }
}

std::vector<int64_t> step_list(const Checker& c, py::handle steps, const char* name, size_t n,
                               int64_t lo) {
  if (!PyList_Check(steps.ptr()) && !PyTuple_Check(steps.ptr()))
    return std::vector<int64_t>(n, c.integer(steps, name, lo));
  const bool is_list = PyList_Check(steps.ptr());
  const auto len = static_cast<size_t>(is_list ? PyList_GET_SIZE(steps.ptr())
                                               : PyTuple_GET_SIZE(steps.ptr()));
  if (len != n)
    c.value_error(std::string(name) + " has " + std::to_string(len) +
                  " entries but there are " + std::to_string(n) + " tensors");
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    PyObject* item = is_list ? PyList_GET_ITEM(steps.ptr(), i) : PyTuple_GET_ITEM(steps.ptr(), i);
    int overflow = 0;
    const long long v = PyLong_CheckExact(item) ? PyLong_AsLongLongAndOverflow(item, &overflow)
                                                : lo - 1;
    if (PyLong_CheckExact(item) && overflow == 0 && v >= lo) {
      out[i] = v;
    } else {
      const std::string nm = entry_name(name, i);
      out[i] = c.integer(item, nm.c_str(), lo);
    }
  }
  return out;
}

std::vector<int64_t> read_counters(const ListChecker& lc, const ArrayList& counters) {
  const Checker& c = lc.checker();
  std::vector<int64_t> steps(counters.size());
  for (size_t i = 0; i < counters.size(); ++i) {
    const py::array& a = counters[i];
    std::string nm;
    if (a.ndim() != 0) {
      counters.arg(i, nm);
      c.value_error(nm + " must be a 0-d array (a step counter), got shape " + shape_str(a));
    }
    lc.layout(counters, i, false);
    const char kind = a.dtype().kind();
    const auto item = a.itemsize();
    // '=' is native; '<' or '>' only when it matches this CPU (a swapped int64 would be read
    // as another number)
    const char order = a.dtype().byteorder();
    constexpr char native = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? '>' : '<';
    if (order != '=' && order != '|' && order != native) {
      counters.arg(i, nm);
      c.type_error(nm + " is not in native byte order (" + dtype_str(a) + ")");
    }
    double v;
    if (kind == 'f' && item == 4) {
      v = *static_cast<const float*>(a.data());
    } else if (kind == 'f' && item == 8) {
      v = *static_cast<const double*>(a.data());
    } else if (kind == 'i' && item == 8) {
      v = static_cast<double>(*static_cast<const int64_t*>(a.data()));
    } else {
      counters.arg(i, nm);
      c.type_error(nm + " must be float32, float64 or int64, got " + dtype_str(a));
    }
    if (!(v >= 0.0 && v < 9.0e15) || v != std::floor(v)) {
      counters.arg(i, nm);
      c.value_error(nm + " must hold a whole number of steps >= 0, got " + std::to_string(v));
    }
    // The count this step uses is the one stored back, rounded as the counter's dtype
    // rounds it (as torch's `step += 1` on a float32 tensor does).
    steps[i] = kind == 'f' && item == 4 ? static_cast<int64_t>(static_cast<float>(v + 1.0))
                                        : static_cast<int64_t>(v + 1.0);
  }
  return steps;
}

void commit_counters(const ArrayList& counters, const std::vector<int64_t>& steps) {
  for (size_t i = 0; i < counters.size(); ++i) {
    const py::array& a = counters[i];
    void* p = const_cast<void*>(a.data());
    if (a.dtype().kind() == 'i')
      *static_cast<int64_t*>(p) = steps[i];
    else if (a.itemsize() == 4)
      *static_cast<float*>(p) = static_cast<float>(steps[i]);
    else
      *static_cast<double*>(p) = static_cast<double>(steps[i]);
  }
}

}  // namespace bind
}  // namespace tk
