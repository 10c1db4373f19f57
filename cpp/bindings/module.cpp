// The extension module trainkern._core: one register_<area> per op family.
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "trainkern/dispatch.h"

namespace py = pybind11;

namespace tk {
namespace bind {
void register_runtime(py::module_& m);
void register_optim(py::module_& m);
void register_activations(py::module_& m);
}  // namespace bind
}  // namespace tk

PYBIND11_MODULE(_core, m) {
  m.doc() = "trainkern compiled kernels; use the functions in the trainkern package.";
  try {
    tk::init_dispatch();
  } catch (const std::invalid_argument& e) {
    // A bad TRAINKERN_ISA must stop the import, never fall back silently.
    throw py::import_error(std::string("trainkern: ") + e.what());
  }
  tk::bind::register_runtime(m);
  tk::bind::register_optim(m);
  tk::bind::register_activations(m);
}
