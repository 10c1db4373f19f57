// Memory-bandwidth probes with the stream shapes of the kernels: the roof each kernel
// is measured against.
#pragma once
#include <cstdint>

#include "trainkern/dispatch.h"
#include "trainkern/kernels.h"

namespace tk {

struct RooflineTable {
  // One pass of `kind` over n floats per array; arrays[0..6] as the kind needs.
  void (*stream)(StreamKind kind, float* const* arrays, int64_t n);
  // Runs `iters` rounds of independent FMA chains on every thread; returns the flops done.
  double (*fma_f32)(int64_t iters);
  double (*fma_f64)(int64_t iters);
};

TK_DECLARE_TABLE(RooflineTable, roofline_table)

// Bytes each kind moves per element (reads + writes, write-allocate traffic not counted).
constexpr double stream_bytes_per_element(StreamKind k) {
  return k == StreamKind::read ? 4 : k == StreamKind::copy ? 8 : k == StreamKind::triad ? 12 : 28;
}

}  // namespace tk
