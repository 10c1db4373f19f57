// The avx512 target: every op family's body compiled with this target's flags
// (CMakeLists.txt) into namespace tk::avx512.
#define TK_NS avx512
#include "simd/avx512.h"

#include "ops/vmath-inl.h"
#include "ops/gelu_central-inl.h"

#include "ops/activations-inl.h"
#include "ops/losses-inl.h"
#include "ops/optim-inl.h"
#include "ops/roofline-inl.h"
#include "ops/gemm-inl.h"
#include "ops/vmath_eval-inl.h"
