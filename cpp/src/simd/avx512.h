// AVX-512 F/BW/DQ/VL: 16 floats or 8 doubles per vector; tails use mask registers.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace tk {
namespace TK_NS {

template <class T>
struct Simd;

template <>
struct Simd<float> {
  struct V {
    __m512 v;
  };
  using M = __mmask16;
  static constexpr size_t N = 16;
  // store_partial is one masked store, about the cost of a plain one.
  static constexpr bool cheap_partial_store = true;

  static __mmask16 tail(size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static V set1(float x) { return {_mm512_set1_ps(x)}; }
  static V zero() { return {_mm512_setzero_ps()}; }
  static V loadu(const float* p) { return {_mm512_loadu_ps(p)}; }
  static void storeu(float* p, V x) { _mm512_storeu_ps(p, x.v); }
  static void stream(float* p, V x) { _mm512_stream_ps(p, x.v); }
  // Orders this thread's stream() stores before its later stores (end of a streamed pass).
  static void stream_fence() { _mm_sfence(); }
  static V load_partial(const float* p, size_t n) { return {_mm512_maskz_loadu_ps(tail(n), p)}; }
  static void store_partial(float* p, V x, size_t n) { _mm512_mask_storeu_ps(p, tail(n), x.v); }
  static V add(V a, V b) { return {_mm512_add_ps(a.v, b.v)}; }
  static V sub(V a, V b) { return {_mm512_sub_ps(a.v, b.v)}; }
  static V mul(V a, V b) { return {_mm512_mul_ps(a.v, b.v)}; }
  static V div(V a, V b) { return {_mm512_div_ps(a.v, b.v)}; }
  static V neg(V a) {
    return {_mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(INT32_MIN)))};
  }
  static V abs(V a) { return {_mm512_abs_ps(a.v)}; }
  static V sqrt(V a) { return {_mm512_sqrt_ps(a.v)}; }
  static V fmadd(V a, V b, V c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  static V fnmadd(V a, V b, V c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; }
  static V fmsub(V a, V b, V c) { return {_mm512_fmsub_ps(a.v, b.v, c.v)}; }
  static V round(V a) {
    return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
  }
  // vscalefps rounds once, so results in the subnormal range are correctly rounded.
  static V ldexp(V a, V n) { return {_mm512_scalef_ps(a.v, n.v)}; }
  // -|a|: one OR with the sign bit
  static V nabs(V a) {
    return {_mm512_castsi512_ps(
        _mm512_or_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(INT32_MIN)))};
  }
  // x = mant * 2^exp with mant in [1, 2), for positive normal x
  static V getexp(V a) { return {_mm512_getexp_ps(a.v)}; }
  static V getmant(V a) { return {_mm512_getmant_ps(a.v, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero)}; }
  // table[(bits of key >> Shift) % 16] in each lane: one permute
  template <int Shift>
  static V lookup16(const float* table, V key) {
    return {_mm512_permutexvar_ps(_mm512_srli_epi32(_mm512_castps_si512(key.v), Shift),
                                  _mm512_loadu_ps(table))};
  }
  // max(|a|, |b|) in one instruction (NaN: either operand)
  static V max_abs(V a, V b) { return {_mm512_range_ps(a.v, b.v, 0x0B)}; }
  // table[(bits of key >> Shift) % 32] in each lane: one two-source permute
  template <int Shift>
  static V lookup32(const float* table, V key) {
    const __m512i k = _mm512_castps_si512(key.v);
    return {_mm512_permutex2var_ps(_mm512_loadu_ps(table), Shift ? _mm512_srli_epi32(k, Shift) : k,
                                   _mm512_loadu_ps(table + 16))};
  }
  // mag with the sign of sgn, for mag >= 0: two logic operations (vpternlogd takes an FMA slot
  // on Zen 4)
  static V or_sign(V mag, V sgn) {
    return {_mm512_or_ps(mag.v, _mm512_and_ps(sgn.v, _mm512_set1_ps(-0.0f)))};
  }
  // 2^n from s = pow2_shifter + n (n an integer in the normal exponent range): the bits of s
  // shifted into the exponent field
  static V exp2_shifted(V s) {
    return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(s.v), 23))};
  }
  static V copysign(V mag, V sgn) {
    const __m512i m = _mm512_set1_epi32(INT32_MIN);
    // bitwise select: sign bit from sgn, the rest from mag
    return {_mm512_castsi512_ps(_mm512_ternarylogic_epi32(m, _mm512_castps_si512(sgn.v),
                                                          _mm512_castps_si512(mag.v), 0xCA))};
  }
  static V min(V a, V b) { return {_mm512_min_ps(a.v, b.v)}; }
  static V max(V a, V b) { return {_mm512_max_ps(a.v, b.v)}; }
  static M lt(V a, V b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ); }
  static M le(V a, V b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ); }
  static M gt(V a, V b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ); }
  static M ge(V a, V b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ); }
  static M eq(V a, V b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ); }
  static M isnan(V a) { return _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q); }
  static M mask_and(M a, M b) { return static_cast<M>(a & b); }
  static M mask_or(M a, M b) { return static_cast<M>(a | b); }
  static M mask_not(M a) { return static_cast<M>(~a); }
  static bool any(M a) { return a != 0; }
  static V select(M m, V a, V b) { return {_mm512_mask_blend_ps(m, b.v, a.v)}; }
  // Halving trees: reductions in a fixed order on every compiler.
  static float reduce_add(V a) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a.v), _mm512_maskz_extractf32x8_ps(0xFF, a.v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  static float reduce_max(V a) {
    __m256 h = _mm256_max_ps(_mm512_castps512_ps256(a.v), _mm512_maskz_extractf32x8_ps(0xFF, a.v, 1));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
  }
  static float first(V a) { return _mm512_cvtss_f32(a.v); }
  // Transposes the 16 x 16 block r[0..16) (lane j of r[i] <-> lane i of r[j]): pairs, then
  // quads within 128-bit lanes, then the 128-bit lanes themselves (64 shuffles).
  static void transpose(V* r) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i].v, r[i + 1].v);
      t[i + 1] = _mm512_unpackhi_ps(r[i].v, r[i + 1].v);
    }
    // u[4g + c], 128-bit lane k: column 4k + c of rows 4g..4g+3
    for (int g = 0; g < 16; g += 4) {
      u[g] = _mm512_shuffle_ps(t[g], t[g + 2], 0x44);
      u[g + 1] = _mm512_shuffle_ps(t[g], t[g + 2], 0xEE);
      u[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
      u[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
    }
    for (int c = 0; c < 4; ++c) {
      const __m512 a = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
      const __m512 b = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
      const __m512 e = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
      const __m512 f = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
      r[c].v = _mm512_shuffle_f32x4(a, e, 0x88);
      r[c + 8].v = _mm512_shuffle_f32x4(a, e, 0xDD);
      r[c + 4].v = _mm512_shuffle_f32x4(b, f, 0x88);
      r[c + 12].v = _mm512_shuffle_f32x4(b, f, 0xDD);
    }
  }
};

template <>
struct Simd<double> {
  struct V {
    __m512d v;
  };
  using M = __mmask8;
  static constexpr size_t N = 8;
  // store_partial is one masked store, about the cost of a plain one.
  static constexpr bool cheap_partial_store = true;

  static __mmask8 tail(size_t n) { return static_cast<__mmask8>((1u << n) - 1u); }
  static V set1(double x) { return {_mm512_set1_pd(x)}; }
  static V zero() { return {_mm512_setzero_pd()}; }
  static V loadu(const double* p) { return {_mm512_loadu_pd(p)}; }
  static void storeu(double* p, V x) { _mm512_storeu_pd(p, x.v); }
  static void stream(double* p, V x) { _mm512_stream_pd(p, x.v); }
  // Orders this thread's stream() stores before its later stores (end of a streamed pass).
  static void stream_fence() { _mm_sfence(); }
  static V load_partial(const double* p, size_t n) { return {_mm512_maskz_loadu_pd(tail(n), p)}; }
  static void store_partial(double* p, V x, size_t n) { _mm512_mask_storeu_pd(p, tail(n), x.v); }
  static V add(V a, V b) { return {_mm512_add_pd(a.v, b.v)}; }
  static V sub(V a, V b) { return {_mm512_sub_pd(a.v, b.v)}; }
  static V mul(V a, V b) { return {_mm512_mul_pd(a.v, b.v)}; }
  static V div(V a, V b) { return {_mm512_div_pd(a.v, b.v)}; }
  static V neg(V a) {
    return {_mm512_castsi512_pd(
        _mm512_xor_si512(_mm512_castpd_si512(a.v), _mm512_set1_epi64(INT64_MIN)))};
  }
  static V abs(V a) { return {_mm512_abs_pd(a.v)}; }
  static V sqrt(V a) { return {_mm512_sqrt_pd(a.v)}; }
  static V fmadd(V a, V b, V c) { return {_mm512_fmadd_pd(a.v, b.v, c.v)}; }
  static V fnmadd(V a, V b, V c) { return {_mm512_fnmadd_pd(a.v, b.v, c.v)}; }
  static V fmsub(V a, V b, V c) { return {_mm512_fmsub_pd(a.v, b.v, c.v)}; }
  static V round(V a) {
    return {_mm512_roundscale_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
  }
  // vscalefpd rounds once, so results in the subnormal range are correctly rounded.
  static V ldexp(V a, V n) { return {_mm512_scalef_pd(a.v, n.v)}; }
  static V nabs(V a) {
    return {_mm512_castsi512_pd(
        _mm512_or_si512(_mm512_castpd_si512(a.v), _mm512_set1_epi64(INT64_MIN)))};
  }
  static V getexp(V a) { return {_mm512_getexp_pd(a.v)}; }
  static V getmant(V a) { return {_mm512_getmant_pd(a.v, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero)}; }
  // mag with the sign of sgn, for mag >= 0: two logic operations (vpternlogd takes an FMA slot
  // on Zen 4)
  static V or_sign(V mag, V sgn) {
    return {_mm512_or_pd(mag.v, _mm512_and_pd(sgn.v, _mm512_set1_pd(-0.0)))};
  }
  // 2^n from s = pow2_shifter + n (n an integer in the normal exponent range): the bits of s
  // shifted into the exponent field
  static V exp2_shifted(V s) {
    return {_mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(s.v), 52))};
  }
  static V copysign(V mag, V sgn) {
    const __m512i m = _mm512_set1_epi64(INT64_MIN);
    // bitwise select: sign bit from sgn, the rest from mag
    return {_mm512_castsi512_pd(_mm512_ternarylogic_epi64(m, _mm512_castpd_si512(sgn.v),
                                                          _mm512_castpd_si512(mag.v), 0xCA))};
  }
  static V min(V a, V b) { return {_mm512_min_pd(a.v, b.v)}; }
  static V max(V a, V b) { return {_mm512_max_pd(a.v, b.v)}; }
  static M lt(V a, V b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_LT_OQ); }
  static M le(V a, V b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_LE_OQ); }
  static M gt(V a, V b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_GT_OQ); }
  static M ge(V a, V b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_GE_OQ); }
  static M eq(V a, V b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_EQ_OQ); }
  static M isnan(V a) { return _mm512_cmp_pd_mask(a.v, a.v, _CMP_UNORD_Q); }
  static M mask_and(M a, M b) { return static_cast<M>(a & b); }
  static M mask_or(M a, M b) { return static_cast<M>(a | b); }
  static M mask_not(M a) { return static_cast<M>(~a); }
  static bool any(M a) { return a != 0; }
  static V select(M m, V a, V b) { return {_mm512_mask_blend_pd(m, b.v, a.v)}; }
  static double reduce_add(V a) {
    __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(a.v), _mm512_maskz_extractf64x4_pd(0xF, a.v, 1));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
  static double reduce_max(V a) {
    __m256d h = _mm256_max_pd(_mm512_castpd512_pd256(a.v), _mm512_maskz_extractf64x4_pd(0xF, a.v, 1));
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)));
  }
  static double first(V a) { return _mm512_cvtsd_f64(a.v); }
  // Transposes the 8 x 8 block r[0..8): pairs, then 128-bit lanes in two steps (24 shuffles).
  static void transpose(V* r) {
    __m512d t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm512_unpacklo_pd(r[i].v, r[i + 1].v);
      t[i + 1] = _mm512_unpackhi_pd(r[i].v, r[i + 1].v);
    }
    // u[4h + q]: rows 4h..4h+3 (a pair per 128-bit lane) of columns {0, 4}, {2, 6}, {1, 5},
    // {3, 7} for q = 0, 1, 2, 3
    for (int h = 0; h < 8; h += 4) {
      u[h] = _mm512_shuffle_f64x2(t[h], t[h + 2], 0x88);
      u[h + 1] = _mm512_shuffle_f64x2(t[h], t[h + 2], 0xDD);
      u[h + 2] = _mm512_shuffle_f64x2(t[h + 1], t[h + 3], 0x88);
      u[h + 3] = _mm512_shuffle_f64x2(t[h + 1], t[h + 3], 0xDD);
    }
    static constexpr int col[4] = {0, 2, 1, 3};
    for (int q = 0; q < 4; ++q) {
      r[col[q]].v = _mm512_shuffle_f64x2(u[q], u[4 + q], 0x88);
      r[col[q] + 4].v = _mm512_shuffle_f64x2(u[q], u[4 + q], 0xDD);
    }
  }
};

}  // namespace TK_NS
}  // namespace tk
