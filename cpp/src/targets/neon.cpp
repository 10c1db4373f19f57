// The neon target: every op family's body compiled with this target's flags
// (CMakeLists.txt) into namespace tk::neon.
#define TK_NS neon
#include "simd/neon.h"

#include "ops/vmath-inl.h"
#include "ops/gelu_central-inl.h"

#include "ops/activations-inl.h"
#include "ops/losses-inl.h"
#include "ops/optim-inl.h"
#include "ops/roofline-inl.h"
#include "ops/gemm-inl.h"
#include "ops/vmath_eval-inl.h"
