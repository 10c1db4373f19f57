// AVX2 + FMA: 8 floats or 4 doubles per vector; masks are all-ones lanes.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace tk {
namespace TK_NS {

template <class T>
struct Simd;

namespace detail {
// Lane i is all-ones when i < n: a sliding window over a constant table.
inline __m256i tail_mask32(size_t n) {
  alignas(32) static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                0,  0,  0,  0,  0,  0,  0,  0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - n));
}
inline __m256i tail_mask64(size_t n) { return tail_mask32(2 * n); }
}  // namespace detail

template <>
struct Simd<float> {
  struct V {
    __m256 v;
  };
  using M = __m256;
  static constexpr size_t N = 8;
  // store_partial (vmaskmov) costs several plain stores on some CPUs (AMD).
  static constexpr bool cheap_partial_store = false;

  static V set1(float x) { return {_mm256_set1_ps(x)}; }
  static V zero() { return {_mm256_setzero_ps()}; }
  static V loadu(const float* p) { return {_mm256_loadu_ps(p)}; }
  static void storeu(float* p, V x) { _mm256_storeu_ps(p, x.v); }
  static void stream(float* p, V x) { _mm256_stream_ps(p, x.v); }
  // Orders this thread's stream() stores before its later stores (end of a streamed pass).
  static void stream_fence() { _mm_sfence(); }
  static V load_partial(const float* p, size_t n) {
    return {_mm256_maskload_ps(p, detail::tail_mask32(n))};
  }
  static void store_partial(float* p, V x, size_t n) {
    _mm256_maskstore_ps(p, detail::tail_mask32(n), x.v);
  }
  static V add(V a, V b) { return {_mm256_add_ps(a.v, b.v)}; }
  static V sub(V a, V b) { return {_mm256_sub_ps(a.v, b.v)}; }
  static V mul(V a, V b) { return {_mm256_mul_ps(a.v, b.v)}; }
  static V div(V a, V b) { return {_mm256_div_ps(a.v, b.v)}; }
  static V neg(V a) { return {_mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f))}; }
  static V abs(V a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
  static V sqrt(V a) { return {_mm256_sqrt_ps(a.v)}; }
  static V fmadd(V a, V b, V c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  static V fnmadd(V a, V b, V c) { return {_mm256_fnmadd_ps(a.v, b.v, c.v)}; }
  static V fmsub(V a, V b, V c) { return {_mm256_fmsub_ps(a.v, b.v, c.v)}; }
  static V round(V a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
  // a * 2^n for integral n with |n| <= 252: two factors 2^h, 2^(n-h), each a normal float,
  // so that a subnormal result is rounded once (by the second multiply).
  static V ldexp(V a, V n) {
    const __m256i k = _mm256_cvtps_epi32(n.v), h = _mm256_srai_epi32(k, 1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256i f1 = _mm256_slli_epi32(_mm256_add_epi32(h, bias), 23);
    const __m256i f2 = _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(k, h), bias), 23);
    return {_mm256_mul_ps(_mm256_mul_ps(a.v, _mm256_castsi256_ps(f1)), _mm256_castsi256_ps(f2))};
  }
  // -|a|: one OR with the sign bit
  static V nabs(V a) { return {_mm256_or_ps(a.v, _mm256_set1_ps(-0.0f))}; }
  // x = mant * 2^exp with mant in [1, 2), for positive normal x (from the bits)
  static V getexp(V a) {
    const __m256i e = _mm256_srli_epi32(_mm256_castps_si256(a.v), 23);
    return {_mm256_cvtepi32_ps(_mm256_sub_epi32(e, _mm256_set1_epi32(127)))};
  }
  static V getmant(V a) {
    const __m256i m = _mm256_and_si256(_mm256_castps_si256(a.v), _mm256_set1_epi32(0x007fffff));
    return {_mm256_castsi256_ps(_mm256_or_si256(m, _mm256_set1_epi32(0x3f800000)))};
  }
  // table[(bits of key >> Shift) % 16] in each lane: a permute of each half of the table,
  // then index bit 3 (moved to the sign) picks one
  template <int Shift>
  static V lookup16(const float* table, V key) {
    const __m256i i = _mm256_srli_epi32(_mm256_castps_si256(key.v), Shift);
    const __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(table), i);
    const __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(table + 8), i);
    return {_mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(i, 28)))};
  }
  // mag with the sign of sgn, for mag >= 0
  static V or_sign(V mag, V sgn) { return {_mm256_or_ps(mag.v, _mm256_and_ps(sgn.v, _mm256_set1_ps(-0.0f)))}; }
  // 2^n from s = pow2_shifter + n (n an integer in the normal exponent range): the bits of s
  // shifted into the exponent field
  static V exp2_shifted(V s) {
    return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(s.v), 23))};
  }
  static V copysign(V mag, V sgn) {
    const __m256 m = _mm256_set1_ps(-0.0f);
    return {_mm256_or_ps(_mm256_andnot_ps(m, mag.v), _mm256_and_ps(m, sgn.v))};
  }
  static V min(V a, V b) { return {_mm256_min_ps(a.v, b.v)}; }
  static V max(V a, V b) { return {_mm256_max_ps(a.v, b.v)}; }
  static M lt(V a, V b) { return _mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ); }
  static M le(V a, V b) { return _mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ); }
  static M gt(V a, V b) { return _mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ); }
  static M ge(V a, V b) { return _mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ); }
  static M eq(V a, V b) { return _mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ); }
  static M isnan(V a) { return _mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q); }
  static M mask_and(M a, M b) { return _mm256_and_ps(a, b); }
  static M mask_or(M a, M b) { return _mm256_or_ps(a, b); }
  static M mask_not(M a) { return _mm256_xor_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(-1))); }
  static bool any(M a) { return _mm256_movemask_ps(a) != 0; }
  static V select(M m, V a, V b) { return {_mm256_blendv_ps(b.v, a.v, m)}; }
  static float reduce_add(V a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float reduce_max(V a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float first(V a) { return _mm256_cvtss_f32(a.v); }
  // Transposes the 8 x 8 block r[0..8) (lane j of r[i] <-> lane i of r[j]): pairs, quads
  // within 128-bit lanes, then the lanes (24 shuffles).
  static void transpose(V* r) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(r[i].v, r[i + 1].v);
      t[i + 1] = _mm256_unpackhi_ps(r[i].v, r[i + 1].v);
    }
    // u[4g + c], 128-bit lane k: column 4k + c of rows 4g..4g+3
    for (int g = 0; g < 8; g += 4) {
      u[g] = _mm256_shuffle_ps(t[g], t[g + 2], 0x44);
      u[g + 1] = _mm256_shuffle_ps(t[g], t[g + 2], 0xEE);
      u[g + 2] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0x44);
      u[g + 3] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
    }
    for (int c = 0; c < 4; ++c) {
      r[c].v = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
      r[c + 4].v = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
  }
};

template <>
struct Simd<double> {
  struct V {
    __m256d v;
  };
  using M = __m256d;
  static constexpr size_t N = 4;
  // store_partial (vmaskmov) costs several plain stores on some CPUs (AMD).
  static constexpr bool cheap_partial_store = false;

  static V set1(double x) { return {_mm256_set1_pd(x)}; }
  static V zero() { return {_mm256_setzero_pd()}; }
  static V loadu(const double* p) { return {_mm256_loadu_pd(p)}; }
  static void storeu(double* p, V x) { _mm256_storeu_pd(p, x.v); }
  static void stream(double* p, V x) { _mm256_stream_pd(p, x.v); }
  // Orders this thread's stream() stores before its later stores (end of a streamed pass).
  static void stream_fence() { _mm_sfence(); }
  static V load_partial(const double* p, size_t n) {
    return {_mm256_maskload_pd(p, detail::tail_mask64(n))};
  }
  static void store_partial(double* p, V x, size_t n) {
    _mm256_maskstore_pd(p, detail::tail_mask64(n), x.v);
  }
  static V add(V a, V b) { return {_mm256_add_pd(a.v, b.v)}; }
  static V sub(V a, V b) { return {_mm256_sub_pd(a.v, b.v)}; }
  static V mul(V a, V b) { return {_mm256_mul_pd(a.v, b.v)}; }
  static V div(V a, V b) { return {_mm256_div_pd(a.v, b.v)}; }
  static V neg(V a) { return {_mm256_xor_pd(a.v, _mm256_set1_pd(-0.0))}; }
  static V abs(V a) { return {_mm256_andnot_pd(_mm256_set1_pd(-0.0), a.v)}; }
  static V sqrt(V a) { return {_mm256_sqrt_pd(a.v)}; }
  static V fmadd(V a, V b, V c) { return {_mm256_fmadd_pd(a.v, b.v, c.v)}; }
  static V fnmadd(V a, V b, V c) { return {_mm256_fnmadd_pd(a.v, b.v, c.v)}; }
  static V fmsub(V a, V b, V c) { return {_mm256_fmsub_pd(a.v, b.v, c.v)}; }
  static V round(V a) { return {_mm256_round_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
  // a * 2^n for integral n with |n| <= 2044, in two normal factors as for float. AVX2 has no
  // double -> int64 conversion: adding 1.5 * 2^52 leaves the integer in the low mantissa bits.
  static V ldexp(V a, V n) {
    const __m256d magic = _mm256_set1_pd(6755399441055744.0 + 1023.0);
    const __m256d h = _mm256_round_pd(_mm256_mul_pd(n.v, _mm256_set1_pd(0.5)),
                                      _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m256i f1 = _mm256_slli_epi64(_mm256_castpd_si256(_mm256_add_pd(h, magic)), 52);
    const __m256i f2 =
        _mm256_slli_epi64(_mm256_castpd_si256(_mm256_add_pd(_mm256_sub_pd(n.v, h), magic)), 52);
    return {_mm256_mul_pd(_mm256_mul_pd(a.v, _mm256_castsi256_pd(f1)), _mm256_castsi256_pd(f2))};
  }
  static V nabs(V a) { return {_mm256_or_pd(a.v, _mm256_set1_pd(-0.0))}; }
  // From the bits: the biased exponent lands in the low mantissa bits of 2^52 + e, a double.
  static V getexp(V a) {
    const __m256i e = _mm256_srli_epi64(_mm256_castpd_si256(a.v), 52);
    const __m256d magic = _mm256_set1_pd(4503599627370496.0);
    const __m256d biased = _mm256_sub_pd(
        _mm256_castsi256_pd(_mm256_or_si256(e, _mm256_castpd_si256(magic))), magic);
    return {_mm256_sub_pd(biased, _mm256_set1_pd(1023.0))};
  }
  static V getmant(V a) {
    const __m256i m =
        _mm256_and_si256(_mm256_castpd_si256(a.v), _mm256_set1_epi64x(0x000fffffffffffffLL));
    return {_mm256_castsi256_pd(_mm256_or_si256(m, _mm256_set1_epi64x(0x3ff0000000000000LL)))};
  }
  // mag with the sign of sgn, for mag >= 0
  static V or_sign(V mag, V sgn) { return {_mm256_or_pd(mag.v, _mm256_and_pd(sgn.v, _mm256_set1_pd(-0.0)))}; }
  // 2^n from s = pow2_shifter + n (n an integer in the normal exponent range): the bits of s
  // shifted into the exponent field
  static V exp2_shifted(V s) {
    return {_mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(s.v), 52))};
  }
  static V copysign(V mag, V sgn) {
    const __m256d m = _mm256_set1_pd(-0.0);
    return {_mm256_or_pd(_mm256_andnot_pd(m, mag.v), _mm256_and_pd(m, sgn.v))};
  }
  static V min(V a, V b) { return {_mm256_min_pd(a.v, b.v)}; }
  static V max(V a, V b) { return {_mm256_max_pd(a.v, b.v)}; }
  static M lt(V a, V b) { return _mm256_cmp_pd(a.v, b.v, _CMP_LT_OQ); }
  static M le(V a, V b) { return _mm256_cmp_pd(a.v, b.v, _CMP_LE_OQ); }
  static M gt(V a, V b) { return _mm256_cmp_pd(a.v, b.v, _CMP_GT_OQ); }
  static M ge(V a, V b) { return _mm256_cmp_pd(a.v, b.v, _CMP_GE_OQ); }
  static M eq(V a, V b) { return _mm256_cmp_pd(a.v, b.v, _CMP_EQ_OQ); }
  static M isnan(V a) { return _mm256_cmp_pd(a.v, a.v, _CMP_UNORD_Q); }
  static M mask_and(M a, M b) { return _mm256_and_pd(a, b); }
  static M mask_or(M a, M b) { return _mm256_or_pd(a, b); }
  static M mask_not(M a) { return _mm256_xor_pd(a, _mm256_castsi256_pd(_mm256_set1_epi64x(-1))); }
  static bool any(M a) { return _mm256_movemask_pd(a) != 0; }
  static V select(M m, V a, V b) { return {_mm256_blendv_pd(b.v, a.v, m)}; }
  static double reduce_add(V a) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
  static double reduce_max(V a) {
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)));
  }
  static double first(V a) { return _mm256_cvtsd_f64(a.v); }
  // Transposes the 4 x 4 block r[0..4): pairs, then 128-bit lanes (8 shuffles).
  static void transpose(V* r) {
    const __m256d t0 = _mm256_unpacklo_pd(r[0].v, r[1].v), t1 = _mm256_unpackhi_pd(r[0].v, r[1].v);
    const __m256d t2 = _mm256_unpacklo_pd(r[2].v, r[3].v), t3 = _mm256_unpackhi_pd(r[2].v, r[3].v);
    r[0].v = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1].v = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2].v = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3].v = _mm256_permute2f128_pd(t1, t3, 0x31);
  }
};

}  // namespace TK_NS
}  // namespace tk
