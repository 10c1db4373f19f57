// Intake of list arguments for multi-tensor bindings (params, grads, ...): one array per
// tensor. Every check has a fast path that builds no string and calls no Python for plain
// ndarrays (a step may carry thousands of small tensors); only a failing check builds the
// entry's name ("grads[3]") and raises through the Checker, with the Checker's messages.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "intake.h"

namespace tk {
namespace bind {

class ArrayList {
 public:
  // `seq` must be a list or a tuple; entries that are not ndarrays go through the same
  // zero-copy intake as single arguments (torch tensors, __dlpack__, buffers).
  ArrayList(const Checker& c, py::handle seq, const char* name);
  size_t size() const { return items_.size(); }
  const py::array& operator[](size_t i) const { return items_[i]; }
  const char* name() const { return name_; }
  // Entry i as a Checker argument; `storage` holds its name.
  Arg arg(size_t i, std::string& storage) const;

 private:
  std::vector<py::array> items_;
  const char* name_;
};

// Checks over entry i of list arguments, raising with the Checker's messages.
class ListChecker {
 public:
  explicit ListChecker(const Checker& c) : c_(c) {}
  const Checker& checker() const { return c_; }

  // `l` has as many entries as `ref`.
  void same_length(const ArrayList& l, const ArrayList& ref) const;
  // float32 or float64.
  DType floating(const ArrayList& l, size_t i) const;
  // Same dtype as ref[j] and the shape of ref[i].
  void like(const ArrayList& l, size_t i, const ArrayList& ref, size_t j) const;
  // C-contiguous, aligned, and writeable unless `read_only`.
  void layout(const ArrayList& l, size_t i, bool read_only) const;
  // No array of `written` shares memory with any other array of either group; arrays of
  // `read` may share memory among themselves (a gradient passed twice is only read).
  void no_overlap(std::initializer_list<const ArrayList*> written,
                  std::initializer_list<const ArrayList*> read) const;

 private:
  const Checker& c_;
};

// Step counts: one integer for every tensor, or a list/tuple with one per tensor.
std::vector<int64_t> step_list(const Checker& c, py::handle steps, const char* name, size_t n,
                               int64_t lo);

// Step counters as torch keeps them (0-d float32/float64/int64 arrays holding the number of
// steps taken): validated, read, and returned incremented by one; `commit_counters` then
// writes the new counts back (call it only once every other argument has been checked).
std::vector<int64_t> read_counters(const ListChecker& lc, const ArrayList& counters);
void commit_counters(const ArrayList& counters, const std::vector<int64_t>& steps);

}  // namespace bind
}  // namespace tk
