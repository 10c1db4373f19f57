// AArch64 NEON: 4 floats or 2 doubles per vector; tails go through a small stack buffer.
#pragma once
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tk {
namespace TK_NS {

template <class T>
struct Simd;

template <>
struct Simd<float> {
  struct V {
    float32x4_t v;
  };
  using M = uint32x4_t;
  static constexpr size_t N = 4;
  // store_partial goes through a stack buffer.
  static constexpr bool cheap_partial_store = false;

  static V set1(float x) { return {vdupq_n_f32(x)}; }
  static V zero() { return {vdupq_n_f32(0.0f)}; }
  static V loadu(const float* p) { return {vld1q_f32(p)}; }
  static void storeu(float* p, V x) { vst1q_f32(p, x.v); }
  static void stream(float* p, V x) { vst1q_f32(p, x.v); }
  // stream() is a plain store here: nothing to order.
  static void stream_fence() {}
  static V load_partial(const float* p, size_t n) {
    float b[4] = {0, 0, 0, 0};
    std::memcpy(b, p, n * sizeof(float));
    return {vld1q_f32(b)};
  }
  static void store_partial(float* p, V x, size_t n) {
    float b[4];
    vst1q_f32(b, x.v);
    std::memcpy(p, b, n * sizeof(float));
  }
  static V add(V a, V b) { return {vaddq_f32(a.v, b.v)}; }
  static V sub(V a, V b) { return {vsubq_f32(a.v, b.v)}; }
  static V mul(V a, V b) { return {vmulq_f32(a.v, b.v)}; }
  static V div(V a, V b) { return {vdivq_f32(a.v, b.v)}; }
  static V neg(V a) { return {vnegq_f32(a.v)}; }
  static V abs(V a) { return {vabsq_f32(a.v)}; }
  static V sqrt(V a) { return {vsqrtq_f32(a.v)}; }
  static V fmadd(V a, V b, V c) { return {vfmaq_f32(c.v, a.v, b.v)}; }
  static V fnmadd(V a, V b, V c) { return {vfmsq_f32(c.v, a.v, b.v)}; }
  static V fmsub(V a, V b, V c) { return {vfmaq_f32(vnegq_f32(c.v), a.v, b.v)}; }
  static V round(V a) { return {vrndnq_f32(a.v)}; }
  // a * 2^n for integral n with |n| <= 252, in two normal factors (one rounding).
  static V ldexp(V a, V n) {
    const int32x4_t k = vcvtq_s32_f32(n.v), h = vshrq_n_s32(k, 1), bias = vdupq_n_s32(127);
    const int32x4_t f1 = vshlq_n_s32(vaddq_s32(h, bias), 23);
    const int32x4_t f2 = vshlq_n_s32(vaddq_s32(vsubq_s32(k, h), bias), 23);
    return {vmulq_f32(vmulq_f32(a.v, vreinterpretq_f32_s32(f1)), vreinterpretq_f32_s32(f2))};
  }
  static V nabs(V a) { return {vnegq_f32(vabsq_f32(a.v))}; }
  // x = mant * 2^exp with mant in [1, 2), for positive normal x (from the bits)
  static V getexp(V a) {
    const int32x4_t e = vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_f32(a.v), 23));
    return {vcvtq_f32_s32(vsubq_s32(e, vdupq_n_s32(127)))};
  }
  static V getmant(V a) {
    const uint32x4_t m = vandq_u32(vreinterpretq_u32_f32(a.v), vdupq_n_u32(0x007fffffu));
    return {vreinterpretq_f32_u32(vorrq_u32(m, vdupq_n_u32(0x3f800000u)))};
  }
  // table[(bits of key >> Shift) % 16] in each lane, lane by lane
  template <int Shift>
  static V lookup16(const float* table, V key) {
    uint32_t i[4];
    vst1q_u32(i, vshrq_n_u32(vreinterpretq_u32_f32(key.v), Shift));
    const float r[4] = {table[i[0] % 16], table[i[1] % 16], table[i[2] % 16], table[i[3] % 16]};
    return {vld1q_f32(r)};
  }
  static V copysign(V mag, V sgn) { return {vbslq_f32(vdupq_n_u32(0x80000000u), sgn.v, mag.v)}; }
  static V or_sign(V mag, V sgn) { return copysign(mag, sgn); }
  // 2^n from s = pow2_shifter + n (n an integer in the normal exponent range): the bits of s
  // shifted into the exponent field
  static V exp2_shifted(V s) {
    return {vreinterpretq_f32_u32(vshlq_n_u32(vreinterpretq_u32_f32(s.v), 23))};
  }
  // Match x86: the second operand wins when the compare is false (NaN included).
  static V min(V a, V b) { return {vbslq_f32(vcltq_f32(a.v, b.v), a.v, b.v)}; }
  static V max(V a, V b) { return {vbslq_f32(vcgtq_f32(a.v, b.v), a.v, b.v)}; }
  static M lt(V a, V b) { return vcltq_f32(a.v, b.v); }
  static M le(V a, V b) { return vcleq_f32(a.v, b.v); }
  static M gt(V a, V b) { return vcgtq_f32(a.v, b.v); }
  static M ge(V a, V b) { return vcgeq_f32(a.v, b.v); }
  static M eq(V a, V b) { return vceqq_f32(a.v, b.v); }
  static M isnan(V a) { return vmvnq_u32(vceqq_f32(a.v, a.v)); }
  static M mask_and(M a, M b) { return vandq_u32(a, b); }
  static M mask_or(M a, M b) { return vorrq_u32(a, b); }
  static M mask_not(M a) { return vmvnq_u32(a); }
  static bool any(M a) { return vmaxvq_u32(a) != 0; }
  static V select(M m, V a, V b) { return {vbslq_f32(m, a.v, b.v)}; }
  static float reduce_add(V a) { return vaddvq_f32(a.v); }
  static float reduce_max(V a) { return vmaxvq_f32(a.v); }
  static float first(V a) { return vgetq_lane_f32(a.v, 0); }
  // Transposes the 4 x 4 block r[0..4) (lane j of r[i] <-> lane i of r[j]).
  static void transpose(V* r) {
    const float32x4x2_t a = vtrnq_f32(r[0].v, r[1].v), b = vtrnq_f32(r[2].v, r[3].v);
    r[0].v = vcombine_f32(vget_low_f32(a.val[0]), vget_low_f32(b.val[0]));
    r[1].v = vcombine_f32(vget_low_f32(a.val[1]), vget_low_f32(b.val[1]));
    r[2].v = vcombine_f32(vget_high_f32(a.val[0]), vget_high_f32(b.val[0]));
    r[3].v = vcombine_f32(vget_high_f32(a.val[1]), vget_high_f32(b.val[1]));
  }
};

template <>
struct Simd<double> {
  struct V {
    float64x2_t v;
  };
  using M = uint64x2_t;
  static constexpr size_t N = 2;
  // store_partial goes through a stack buffer.
  static constexpr bool cheap_partial_store = false;

  static V set1(double x) { return {vdupq_n_f64(x)}; }
  static V zero() { return {vdupq_n_f64(0.0)}; }
  static V loadu(const double* p) { return {vld1q_f64(p)}; }
  static void storeu(double* p, V x) { vst1q_f64(p, x.v); }
  static void stream(double* p, V x) { vst1q_f64(p, x.v); }
  // stream() is a plain store here: nothing to order.
  static void stream_fence() {}
  static V load_partial(const double* p, size_t n) {
    double b[2] = {0, 0};
    std::memcpy(b, p, n * sizeof(double));
    return {vld1q_f64(b)};
  }
  static void store_partial(double* p, V x, size_t n) {
    double b[2];
    vst1q_f64(b, x.v);
    std::memcpy(p, b, n * sizeof(double));
  }
  static V add(V a, V b) { return {vaddq_f64(a.v, b.v)}; }
  static V sub(V a, V b) { return {vsubq_f64(a.v, b.v)}; }
  static V mul(V a, V b) { return {vmulq_f64(a.v, b.v)}; }
  static V div(V a, V b) { return {vdivq_f64(a.v, b.v)}; }
  static V neg(V a) { return {vnegq_f64(a.v)}; }
  static V abs(V a) { return {vabsq_f64(a.v)}; }
  static V sqrt(V a) { return {vsqrtq_f64(a.v)}; }
  static V fmadd(V a, V b, V c) { return {vfmaq_f64(c.v, a.v, b.v)}; }
  static V fnmadd(V a, V b, V c) { return {vfmsq_f64(c.v, a.v, b.v)}; }
  static V fmsub(V a, V b, V c) { return {vfmaq_f64(vnegq_f64(c.v), a.v, b.v)}; }
  static V round(V a) { return {vrndnq_f64(a.v)}; }
  // a * 2^n for integral n with |n| <= 2044, in two normal factors (one rounding).
  static V ldexp(V a, V n) {
    const int64x2_t k = vcvtq_s64_f64(n.v), h = vshrq_n_s64(k, 1), bias = vdupq_n_s64(1023);
    const int64x2_t f1 = vshlq_n_s64(vaddq_s64(h, bias), 52);
    const int64x2_t f2 = vshlq_n_s64(vaddq_s64(vsubq_s64(k, h), bias), 52);
    return {vmulq_f64(vmulq_f64(a.v, vreinterpretq_f64_s64(f1)), vreinterpretq_f64_s64(f2))};
  }
  static V nabs(V a) { return {vnegq_f64(vabsq_f64(a.v))}; }
  static V getexp(V a) {
    const int64x2_t e = vreinterpretq_s64_u64(vshrq_n_u64(vreinterpretq_u64_f64(a.v), 52));
    return {vcvtq_f64_s64(vsubq_s64(e, vdupq_n_s64(1023)))};
  }
  static V getmant(V a) {
    const uint64x2_t m =
        vandq_u64(vreinterpretq_u64_f64(a.v), vdupq_n_u64(0x000fffffffffffffull));
    return {vreinterpretq_f64_u64(vorrq_u64(m, vdupq_n_u64(0x3ff0000000000000ull)))};
  }
  static V copysign(V mag, V sgn) {
    return {vbslq_f64(vdupq_n_u64(0x8000000000000000ull), sgn.v, mag.v)};
  }
  static V or_sign(V mag, V sgn) { return copysign(mag, sgn); }
  // 2^n from s = pow2_shifter + n (n an integer in the normal exponent range): the bits of s
  // shifted into the exponent field
  static V exp2_shifted(V s) {
    return {vreinterpretq_f64_u64(vshlq_n_u64(vreinterpretq_u64_f64(s.v), 52))};
  }
  static V min(V a, V b) { return {vbslq_f64(vcltq_f64(a.v, b.v), a.v, b.v)}; }
  static V max(V a, V b) { return {vbslq_f64(vcgtq_f64(a.v, b.v), a.v, b.v)}; }
  static M lt(V a, V b) { return vcltq_f64(a.v, b.v); }
  static M le(V a, V b) { return vcleq_f64(a.v, b.v); }
  static M gt(V a, V b) { return vcgtq_f64(a.v, b.v); }
  static M ge(V a, V b) { return vcgeq_f64(a.v, b.v); }
  static M eq(V a, V b) { return vceqq_f64(a.v, b.v); }
  static M isnan(V a) {
    return vreinterpretq_u64_u32(vmvnq_u32(vreinterpretq_u32_u64(vceqq_f64(a.v, a.v))));
  }
  static M mask_and(M a, M b) { return vandq_u64(a, b); }
  static M mask_or(M a, M b) { return vorrq_u64(a, b); }
  static M mask_not(M a) {
    return vreinterpretq_u64_u32(vmvnq_u32(vreinterpretq_u32_u64(a)));
  }
  static bool any(M a) { return (vgetq_lane_u64(a, 0) | vgetq_lane_u64(a, 1)) != 0; }
  static V select(M m, V a, V b) { return {vbslq_f64(m, a.v, b.v)}; }
  static double reduce_add(V a) { return vaddvq_f64(a.v); }
  static double reduce_max(V a) { return vmaxvq_f64(a.v); }
  static double first(V a) { return vgetq_lane_f64(a.v, 0); }
  // Transposes the 2 x 2 block r[0..2).
  static void transpose(V* r) {
    const float64x2_t a = vzip1q_f64(r[0].v, r[1].v), b = vzip2q_f64(r[0].v, r[1].v);
    r[0].v = a;
    r[1].v = b;
  }
};

}  // namespace TK_NS
}  // namespace tk
