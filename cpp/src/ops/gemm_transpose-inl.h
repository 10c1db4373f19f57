// In-register transposes of one L×L block (L = lanes of the target's vector), used to pack
// a column-major B (a torch weight seen through .T) into row-major slivers. Raw intrinsics,
// one set per target; a target without one packs that layout element by element.
#pragma once
#include <cstdint>

namespace tk {
namespace TK_NS {
namespace gemm_detail {

// Transpose<T>::block(src, ss, dst, ds): dst row r, element c = src row c, element r, for
// r, c < lanes; rows are ss (src) and ds (dst) elements apart.
template <class T>
struct Transpose {
  static constexpr bool kHas = false;
  static void block(const T*, int64_t, T*, int64_t) {}
};

#if defined(__AVX512F__)
template <>
struct Transpose<float> {
  static constexpr bool kHas = true;
  static void block(const float* src, int64_t ss, float* dst, int64_t ds) {
    __m512 r[16], t[16], u[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ss);
    // 32-bit, then 64-bit interleaves within 128-bit lanes: lane j of u[4i+m] holds
    // element 4j+m of rows 4i..4i+3.
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {
      const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
      const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
      u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
      u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
      u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
      u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // Then a 4×4 transpose of 128-bit lanes: output row 4j+m gathers lane j of
    // u[m], u[4+m], u[8+m], u[12+m].
    for (int m = 0; m < 4; ++m) {
      const __m512 v0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88);
      const __m512 v1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xdd);
      const __m512 v2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
      const __m512 v3 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xdd);
      _mm512_storeu_ps(dst + (m)*ds, _mm512_shuffle_f32x4(v0, v2, 0x88));
      _mm512_storeu_ps(dst + (4 + m) * ds, _mm512_shuffle_f32x4(v1, v3, 0x88));
      _mm512_storeu_ps(dst + (8 + m) * ds, _mm512_shuffle_f32x4(v0, v2, 0xdd));
      _mm512_storeu_ps(dst + (12 + m) * ds, _mm512_shuffle_f32x4(v1, v3, 0xdd));
    }
  }
};

template <>
struct Transpose<double> {
  static constexpr bool kHas = true;
  static void block(const double* src, int64_t ss, double* dst, int64_t ds) {
    __m512d r[8], t[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm512_loadu_pd(src + i * ss);
    // Lane j (two doubles) of t[2i+m] holds element 2j+m of rows 2i, 2i+1.
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
    }
    for (int m = 0; m < 2; ++m) {
      const __m512d v0 = _mm512_shuffle_f64x2(t[m], t[2 + m], 0x88);
      const __m512d v1 = _mm512_shuffle_f64x2(t[m], t[2 + m], 0xdd);
      const __m512d v2 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0x88);
      const __m512d v3 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0xdd);
      _mm512_storeu_pd(dst + (m)*ds, _mm512_shuffle_f64x2(v0, v2, 0x88));
      _mm512_storeu_pd(dst + (2 + m) * ds, _mm512_shuffle_f64x2(v1, v3, 0x88));
      _mm512_storeu_pd(dst + (4 + m) * ds, _mm512_shuffle_f64x2(v0, v2, 0xdd));
      _mm512_storeu_pd(dst + (6 + m) * ds, _mm512_shuffle_f64x2(v1, v3, 0xdd));
    }
  }
};
#elif defined(__AVX2__)
template <>
struct Transpose<float> {
  static constexpr bool kHas = true;
  static void block(const float* src, int64_t ss, float* dst, int64_t ds) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ss);
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i) {
      const __m256d a = _mm256_castps_pd(t[4 * i]), b = _mm256_castps_pd(t[4 * i + 1]);
      const __m256d c = _mm256_castps_pd(t[4 * i + 2]), d = _mm256_castps_pd(t[4 * i + 3]);
      u[4 * i] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c));
      u[4 * i + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
      u[4 * i + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, d));
      u[4 * i + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, d));
    }
    for (int m = 0; m < 4; ++m) {
      _mm256_storeu_ps(dst + m * ds, _mm256_permute2f128_ps(u[m], u[4 + m], 0x20));
      _mm256_storeu_ps(dst + (4 + m) * ds, _mm256_permute2f128_ps(u[m], u[4 + m], 0x31));
    }
  }
};

template <>
struct Transpose<double> {
  static constexpr bool kHas = true;
  static void block(const double* src, int64_t ss, double* dst, int64_t ds) {
    const __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + ss);
    const __m256d r2 = _mm256_loadu_pd(src + 2 * ss), r3 = _mm256_loadu_pd(src + 3 * ss);
    const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(dst + ds, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(dst + 2 * ds, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(dst + 3 * ds, _mm256_permute2f128_pd(t1, t3, 0x31));
  }
};
#endif

}  // namespace gemm_detail
}  // namespace TK_NS
}  // namespace tk
