// Scalar "vectors" of one lane: the portable baseline and second oracle.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace tk {
namespace TK_NS {

template <class T>
struct Simd {
  struct V {
    T v;
  };
  using M = bool;
  static constexpr size_t N = 1;
  static constexpr bool cheap_partial_store = true;

  static V set1(T x) { return {x}; }
  static V zero() { return {T(0)}; }
  static V loadu(const T* p) { return {*p}; }
  static void storeu(T* p, V x) { *p = x.v; }
  static void stream(T* p, V x) { *p = x.v; }
  // stream() is a plain store here: nothing to order.
  static void stream_fence() {}
  static V load_partial(const T* p, size_t n) { return {n ? *p : T(0)}; }
  static void store_partial(T* p, V x, size_t n) {
    if (n) *p = x.v;
  }
  static V add(V a, V b) { return {a.v + b.v}; }
  static V sub(V a, V b) { return {a.v - b.v}; }
  static V mul(V a, V b) { return {a.v * b.v}; }
  static V div(V a, V b) { return {a.v / b.v}; }
  static V neg(V a) { return {-a.v}; }
  static V abs(V a) { return {std::fabs(a.v)}; }
  static V sqrt(V a) { return {std::sqrt(a.v)}; }
  // a*b + c rounded once, like the vector targets' FMA.
  static V fmadd(V a, V b, V c) { return {std::fma(a.v, b.v, c.v)}; }
  static V fnmadd(V a, V b, V c) { return {std::fma(-a.v, b.v, c.v)}; }
  static V fmsub(V a, V b, V c) { return {std::fma(a.v, b.v, -c.v)}; }
  // Nearest, ties to even, without libm: adding 2^(mantissa bits) to |a| rounds in the
  // current (default) mode; larger magnitudes are already integers.
  static V round(V a) {
    const T big = T(std::is_same<T, float>::value ? 8388608.0 : 4503599627370496.0);
    const T m = std::fabs(a.v);
    return {m < big ? std::copysign((m + big) - big, a.v) : a.v};
  }
  // a * 2^n for integral n (|n| <= 2044), rounded once.
  static V ldexp(V a, V n) { return {std::ldexp(a.v, static_cast<int>(n.v))}; }
  static V nabs(V a) { return {-std::fabs(a.v)}; }
  // x = mant * 2^exp with mant in [1, 2), for positive normal x. Zero, inf and NaN come back
  // as they are from getmant (ilogb(0) is INT_MIN, which cannot be negated).
  static V getexp(V a) { return {static_cast<T>(std::ilogb(a.v))}; }
  static V getmant(V a) {
    return {a.v == T(0) || !std::isfinite(a.v) ? a.v : std::scalbn(a.v, -std::ilogb(a.v))};
  }
  // table[(bits of key >> Shift) % 16] (float only)
  template <int Shift>
  static V lookup16(const T* table, V key) {
    static_assert(sizeof(T) == 4, "lookup16 indexes by the bits of a float");
    uint32_t bits;
    std::memcpy(&bits, &key.v, sizeof bits);
    return {table[(bits >> Shift) % 16]};
  }
  static V copysign(V mag, V sgn) { return {std::copysign(mag.v, sgn.v)}; }
  static V or_sign(V mag, V sgn) { return copysign(mag, sgn); }
  // 2^n from s = pow2_shifter + n (n an integer in the normal exponent range): the bits of s
  // shifted into the exponent field
  static V exp2_shifted(V s) {
    using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
    U bits;
    std::memcpy(&bits, &s.v, sizeof bits);
    bits <<= sizeof(T) == 4 ? 23 : 52;
    V r;
    std::memcpy(&r.v, &bits, sizeof bits);
    return r;
  }
  // x86 semantics: the second operand is returned when either is NaN.
  static V min(V a, V b) { return {a.v < b.v ? a.v : b.v}; }
  static V max(V a, V b) { return {a.v > b.v ? a.v : b.v}; }
  static M lt(V a, V b) { return a.v < b.v; }
  static M le(V a, V b) { return a.v <= b.v; }
  static M gt(V a, V b) { return a.v > b.v; }
  static M ge(V a, V b) { return a.v >= b.v; }
  static M eq(V a, V b) { return a.v == b.v; }
  static M isnan(V a) { return a.v != a.v; }
  static M mask_and(M a, M b) { return a && b; }
  static M mask_or(M a, M b) { return a || b; }
  static M mask_not(M a) { return !a; }
  static bool any(M a) { return a; }
  static V select(M m, V a, V b) { return m ? a : b; }
  static T reduce_add(V a) { return a.v; }
  static T reduce_max(V a) { return a.v; }
  static T first(V a) { return a.v; }
  // Transposes the N x N block r[0..N) (lane j of r[i] <-> lane i of r[j]).
  static void transpose(V*) {}
};

}  // namespace TK_NS
}  // namespace tk
