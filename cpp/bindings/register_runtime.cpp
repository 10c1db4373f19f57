// Dispatch state, threads, build configuration and the bandwidth probe.
#include <omp.h>

#include <stdexcept>

#include <pybind11/stl.h>

#include "intake.h"
#include "parallel.h"
#include "trainkern/dispatch.h"
#include "trainkern/kernels.h"

namespace tk {
namespace bind {

void register_runtime(py::module_& m) {
  m.def("isa", [] { return std::string(isa_name(active_isa())); },
        "Name of the ISA target the kernels run on.");
  m.def(
      "available_isas",
      [] {
        py::list out;
        for (Isa i : available_isas()) out.append(isa_name(i));
        return out;
      },
      "Targets built into this extension that this CPU can run, best first.");
  m.def(
      "compiled_isas",
      [] {
        py::list out;
        for (int i = 0; i < kNumIsa; ++i)
          if (isa_compiled(static_cast<Isa>(i))) out.append(isa_name(static_cast<Isa>(i)));
        return out;
      },
      "Targets built into this extension.");
  m.def(
      "set_isa",
      [](const std::string& name) {
        Isa isa;
        if (!isa_from_name(name, &isa))
          throw py::value_error("unknown ISA target '" + name +
                                "'; expected one of: scalar, avx2, avx512, neon");
        try {
          set_active_isa(isa);
        } catch (const std::invalid_argument& e) {
          throw py::value_error(e.what());
        }
      },
      py::arg("name"), "Select the ISA target (tests and benchmarks); raises if it cannot run.");
  m.def(
      "cpu_info",
      [] {
        const CpuInfo& c = cpu_info();
        py::dict d;
        d["vendor"] = c.vendor;
        d["brand"] = c.brand;
        d["features"] = c.features;
        return d;
      },
      "CPU vendor, brand string and the features dispatch looks at.");
  m.def(
      "build_info",
      [] {
        py::dict d;
        d["version"] = TRAINKERN_VERSION;
        d["compiler"] = TRAINKERN_COMPILER;
        d["build_type"] = TRAINKERN_BUILD_TYPE;
        d["targets"] = TRAINKERN_TARGET_LIST;
        d["openmp"] = std::to_string(_OPENMP);
        return d;
      },
      "How this extension was built.");
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("set_num_threads: n must be >= 1, got " + std::to_string(n));
    set_num_threads(n);
  }, py::arg("n"));
  m.def("get_num_threads", [] { return num_threads(); });
  m.def("_reset_num_threads", [] { set_num_threads(0); },
        "Go back to OpenMP's default thread count (OMP_NUM_THREADS).");
  m.def(
      "stream_pass",
      [](int kind, const std::vector<py::array_t<float, py::array::c_style>>& arrays) {
        if (kind < 0 || kind > 3) throw py::value_error("stream_pass: kind must be 0..3");
        if (arrays.empty()) throw py::value_error("stream_pass: arrays must not be empty");
        static const int needed[] = {1, 2, 3, 4};
        if (static_cast<int>(arrays.size()) < needed[kind])
          throw py::value_error("stream_pass: kind " + std::to_string(kind) + " needs " +
                                std::to_string(needed[kind]) + " arrays");
        std::vector<float*> ptrs;
        for (const auto& a : arrays) {
          if (a.size() != arrays[0].size())
            throw py::value_error("stream_pass: arrays must have equal sizes");
          ptrs.push_back(const_cast<float*>(a.data()));
        }
        py::gil_scoped_release release;
        return stream_pass(static_cast<StreamKind>(kind), ptrs.data(),
                           static_cast<int64_t>(arrays[0].size()));
      },
      py::arg("kind"), py::arg("arrays"),
      "One bandwidth-probe pass (0 read, 1 copy, 2 triad, 3 adam-shaped); returns bytes moved.");
  m.def(
      "peak_gflops",
      [](bool f64) {
        py::gil_scoped_release release;
        return peak_gflops(f64);
      },
      py::arg("f64") = false,
      "Measured peak FMA throughput (GFLOP/s) of the active target on get_num_threads() threads.");
}

}  // namespace bind
}  // namespace tk
