// Vectorised elementary functions and the activations built on them, written once against
// Simd<T> and compiled per target (each target TU includes this after its simd header).
//
// Accuracy (tests/test_vmath.py): float within 4 ULP of the float64 value over the whole
// range, double within 1e-14 relative; NaN propagates; +-inf give the limits; results that
// are subnormal are rounded once from an unscaled value (the final ldexp), never computed
// from a subnormal intermediate. Coefficients come from scripts/fit_vmath.py.
//
// Clamps use S::max(bound, x) / S::min(bound, x): the x86 rule returns the second operand
// when either is NaN, so NaN passes through every clamp.
#pragma once
#include <cmath>
#include <cstddef>
#include <type_traits>

// Forced inlining: GCC otherwise calls GELU and friends out of line from the kernel loops,
// which costs a third of their throughput.
#if defined(__GNUC__) || defined(__clang__)
#define TK_VMATH_INLINE inline __attribute__((always_inline))
#else
#define TK_VMATH_INLINE inline
#endif

namespace tk {
namespace TK_NS {

template <class T>
struct VmathCoef;

template <>
struct VmathCoef<float> {
  // exp(x) is 0 below -104 and inf above 89. The clamp goes lower, to where even a product
  // of exp(x) with a factor up to 2^90 rounds to 0 (the targets' ldexp takes |n| <= 252).
  static constexpr float exp_lo = -170.0f, exp_hi = 89.0f;
  // x sigmoid(u) and its derivative have reached 0 or 1 past +-sig_bound.
  static constexpr float sig_bound = 128.0f;
  // sigmoid(u) rounds to 1 past sig_up, where 2^(u / ln2) is still normal; 2^min_exp is the
  // least normal power of 2.
  static constexpr float sig_up = 87.0f, min_exp = -126.0f;
  static constexpr float log2e = 1.44269502162933349609375f;
  static constexpr float ln2_hi = 0.693147182464599609375f, ln2_lo = -1.9046542121259336e-09f;
  // exp(r) = 1 + r + r^2 P(r) on [-ln2/2, ln2/2]
  static constexpr float exp_p[5] = {0.5f, 0.16666577756404877f, 0.041666556149721146f,
                                     0.008363173343241215f, 0.0013926175888627768f};
  // tanh(x) rounds to +-1 past tanh_sat and to x below tanh_tiny (x^2/3 < 2^-25)
  static constexpr float tanh_sat = 9.1f, tanh_tiny = 2.44140625e-4f;  // 2^-12
  // Normal tail Q(a) = exp(-a^2/2) R(a), R on [0, gelu_grad_amax] from 16 intervals that
  // split a + 1 by exponent and two leading mantissa bits (bits 21..24 of the float index
  // them): R(lo + f) = sum_j mills_c[j] f^j. Horner in the local f starts from the dominant
  // term, so it rounds to about half an ULP; a global rational lost up to 4 ULP there.
  static constexpr bool tail_table = true;
  static constexpr float mills_lo[16] = {1.0f, 1.5f, 2.0f, 2.5f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f,
                                       9.0f, 11.0f, 13.0f, 0.0f, 0.25f, 0.5f, 0.75f};
  static constexpr float mills_c[7][16] = {
      {0.2615782916545868f, 0.20578067004680634f, 0.16810199618339539f, 0.14133132994174957f,
       0.12151394784450531f, 0.09441064298152924f, 0.0769193023443222f, 0.06477931141853333f,
       0.05589348077774048f, 0.043798789381980896f, 0.0359748899936676f, 0.03050941415131092f,
       0.5f, 0.41403210163116455f, 0.3496188223361969f, 0.300232470035553f},
      {-0.1373639553785324f, -0.09027126431465149f, -0.06273827701807022f, -0.04561394825577736f,
       -0.03440039977431297f, -0.021299706771969795f, -0.014345753006637096f,
       -0.010266393423080444f, -0.007687890436500311f, -0.004753177985548973f,
       -0.003218493890017271f, -0.002319891704246402f, -0.3989422619342804f,
       -0.29543423652648926f, -0.22413286566734314f, -0.17376793920993805f},
      {0.06210600957274437f, 0.03518648073077202f, 0.021312575787305832f, 0.013648166321218014f,
       0.009155722334980965f, 0.0046057505533099174f, 0.002595224417746067f,
       0.001590461004525423f, 0.001038976013660431f, 0.0005100620328448713f,
       0.0002857196959666908f, 0.00017540797125548124f, 0.24999946355819702f,
       0.17008648812770844f, 0.11877605319023132f, 0.084953173995018f},
      {-0.025071686133742332f, -0.012492198497056961f, -0.006702482234686613f,
       -0.003830403322353959f, -0.0023068170994520187f, -0.0009578642784617841f,
       -0.00045623985351994634f, -0.00024110601225402206f, -0.00013779640721622854f,
       -5.408690412878059e-05f, -2.5159148208331317e-05f, -1.3184919225750491e-05f,
       -0.13296785950660706f, -0.08429751545190811f, -0.05491136759519577f,
       -0.036682385951280594f},
      {0.009173639118671417f, 0.004082285799086094f, 0.001965549308806658f,
       0.0010133655741810799f, 0.0005453018820844591f, 0.0001902325893752277f,
       7.751358498353511e-05f, 3.561434641596861e-05f, 1.75910990947159e-05f,
       5.597541075985646e-06f, 2.1792654933960875e-06f, 9.795785445021465e-07f,
       0.06235024333000183f, 0.03717523068189621f, 0.022788481786847115f, 0.014337483793497086f},
      {-0.0029142771381884813f, -0.0011802229564636946f, -0.0005183728644624352f,
       -0.0002445249119773507f, -0.00011120307317469269f, -3.36108569172211e-05f,
       -1.1991188330284785e-05f, -4.874967544310493e-06f, -1.947811142599676e-06f,
       -5.2052212140552e-07f, -1.7376184757722513e-07f, -6.814527608867138e-08f,
       -0.025691844522953033f, -0.01453112531453371f, -0.008451827801764011f,
       -0.005047381389886141f},
      {0.0006098785670474172f, 0.00023118089302442968f, 9.508916264167055e-05f,
       4.204893411952071e-05f, 1.408805837854743e-05f, 3.8623024920525495e-06f,
       1.2555029798022588e-06f, 4.674180900110514e-07f, 1.3168103407679155e-07f,
       3.125424186123382e-08f, 9.364240938225521e-09f, 3.327036646183501e-09f,
       0.00762358121573925f, 0.00414499593898654f, 0.002317295875400305f, 0.0013301336439326406f}};
  // exp(-z/2) on [-ln2, ln2]: exp(-a^2/2) = 2^n exp(-z/2), z = a^2 + n ln4 (the halving is
  // in the coefficients, not an extra multiply)
  static constexpr float enh_p[7] = {1.0f, -0.5f, 0.125f, -0.02083301916718483f,
                                    0.0026041469536721706f, -0.0002617226855363697f,
                                    2.178298200306017e-05f};
  static constexpr float neg_half_log2e = -0.72134751081466674805f;
  static constexpr float ln4_hi = 1.38629436492919921875f, ln4_lo = -3.8093084242518671e-09f;
  // GELU(-a) rounds to -0 past gelu_amax, GELU'(-a) past gelu_grad_amax.
  static constexpr float gelu_amax = 14.36f, gelu_grad_amax = 14.55f;
  // erf(x) = x E(x^2) for |x| <= 1/2
  static constexpr float erf_p[7] = {1.128379225730896f,     -0.37612637877464294f,
                                     0.11283791065216064f,   -0.026866110041737556f,
                                     0.005223275627940893f,  -0.0008506765007041395f,
                                     0.00010822775220731273f};
  // log(m) = 2 s + s^3 Q(s^2), s = (m - 1) / (m + 1), Q = 2/3 + 2/5 s^2 + ...; |s| <= 0.172
  static constexpr float log_q[5] = {2.0f / 3, 2.0f / 5, 2.0f / 7, 2.0f / 9, 2.0f / 11};
  static constexpr float min_normal = 1.17549435e-38f, subnormal_scale = 33554432.0f;  // 2^25
  static constexpr float sqrt2 = 1.41421353816986083984375f;
  static constexpr float inv_sqrt_2pi = 0.3989422917366028f;
  // GELU tanh form, u = x (c1 + c3 x^2): c1 = 2 sqrt(2/pi) with its hi part a multiple of
  // 2^-20 (so that c1_hi - w is exact for w < 16), c3 = 0.044715 c1, each as hi + lo.
  // x sigmoid(u) has rounded to -0 below -gt_lo and to x above gt_hi.
  static constexpr float gt_c1_hi = 1.595768928527832f, gt_c1_lo = 1.930778950054446e-07f;
  static constexpr float gt_c3_hi = 0.07135481387376785f, gt_c3_lo = 2.3988324659995897e-09f;
  static constexpr float gt_lo = 11.0f, gt_hi = 8.0f;
  // adding and removing it rounds a float below 2^22 in magnitude to an integer
  static constexpr float shifter = 12582912.0f;  // 1.5 * 2^23
  // shifter + 127: the sum's low bits are n + 127, the exponent field of 2^n
  static constexpr float pow2_shifter = 12583039.0f;
};

template <>
struct VmathCoef<double> {
  static constexpr double exp_lo = -1400.0, exp_hi = 710.0;
  static constexpr double sig_bound = 1024.0;
  static constexpr double sig_up = 708.0, min_exp = -1022.0;
  static constexpr double log2e = 1.4426950408889634;
  static constexpr double ln2_hi = 0.6931471805599453, ln2_lo = 2.3190468138462996e-17;
  static constexpr double exp_p[10] = {
      0.5000000000000001,     0.16666666666666669,    0.041666666666624164,
      0.008333333333330065,   0.0013888888917196719,  0.00019841269863040545,
      2.4801521322368692e-05, 2.7557268480310024e-06, 2.7620075879983367e-07,
      2.5100375832561234e-08};
  static constexpr double tanh_sat = 19.1, tanh_tiny = 7.450580596923828e-09;  // 2^-27
  // R(a) = t P(t), t = k / (k + a): in double the rounding of t costs ~1e-16 only.
  static constexpr bool tail_table = false;
  static constexpr double tail_k = 4.0;
  static constexpr double tail_p[23] = {
      0.09973557010405075,    0.0997355698275493,   0.0935021062324809,   0.08103495845227489,
      0.06350624358259162,    0.04321632687564621,  0.023622878070370446, 0.005825427459598494,
      0.0034509249607885405,  -0.031391418335187646, 0.07001574173813635, -0.180842653964667,
      0.34163964946165565,    -0.48321453235115563, 0.4995813901930216,   -0.2990961070758562,
      -0.028583499986237052,  0.25276231305149177,  -0.2623036361271442,  0.15141742929720106,
      -0.05356457693281953,   0.010950183424583466, -0.0010002879583737698};
  static constexpr double gelu_amax = 38.59, gelu_grad_amax = 38.68;
  static constexpr double erf_p[12] = {
      1.1283791670955126,     -0.37612638903183754,   0.11283791670955126,
      -0.026866170645131242,  0.005223977625441806,   -0.0008548327023363943,
      0.00012055332969230665, -1.4925649162903559e-05, 1.6462038363970583e-06,
      -1.636264690374604e-07, 1.4721521176389801e-08, -1.0958654538847351e-09};
  static constexpr double log_q[11] = {2.0 / 3,  2.0 / 5,  2.0 / 7,  2.0 / 9,  2.0 / 11, 2.0 / 13,
                                       2.0 / 15, 2.0 / 17, 2.0 / 19, 2.0 / 21, 2.0 / 23};
  static constexpr double min_normal = 2.2250738585072014e-308,
                          subnormal_scale = 18014398509481984.0;  // 2^54
  static constexpr double sqrt2 = 1.4142135623730951;
  static constexpr double inv_sqrt_2pi = 0.3989422804014327;
  // c1_hi a multiple of 2^-47 (c1_hi - w exact for w < 64)
  static constexpr double gt_c1_hi = 1.5957691216057341, gt_c1_lo = -3.430362161966579e-15;
  static constexpr double gt_c3_hi = 0.07135481627260025, gt_c3_lo = -6.175149918155315e-19;
  static constexpr double gt_lo = 22.0, gt_hi = 10.0;
  static constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr double pow2_shifter = 6755399441056767.0;  // shifter + 1023
};

namespace vmath_detail {

// Horner's rule, coefficients low order first.
template <class T, size_t K>
TK_VMATH_INLINE typename Simd<T>::V poly(typename Simd<T>::V x, const T (&c)[K]) {
  using S = Simd<T>;
  typename S::V r = S::set1(c[K - 1]);
  for (size_t i = K - 1; i-- > 0;) r = S::fmadd(r, x, S::set1(c[i]));
  return r;
}

// exp(y + ylo) = p * 2^n for y in [exp_lo, exp_hi] (NaN passes), |ylo| << ulp(y) a low part
// that carries what y could not hold. p is in [0.7, 1.42]; scaling is left to the caller so
// that a product with p can be rounded once into the subnormal range.
template <class T>
struct ExpParts {
  typename Simd<T>::V p, n;
};

template <class T, bool HasLo>
TK_VMATH_INLINE ExpParts<T> exp_parts(typename Simd<T>::V y, typename Simd<T>::V ylo) {
  using S = Simd<T>;
  using C = VmathCoef<T>;
  const auto n = S::round(S::mul(y, S::set1(C::log2e)));
  // y - n ln2 in two steps: the first is exact (the FMA keeps the product whole).
  auto r = S::fnmadd(n, S::set1(C::ln2_hi), y);
  r = S::fnmadd(n, S::set1(C::ln2_lo), r);
  if (HasLo) r = S::add(r, ylo);
  auto p = poly<T>(r, C::exp_p);
  p = S::fmadd(p, r, S::set1(T(1)));
  p = S::fmadd(p, r, S::set1(T(1)));
  return {p, n};
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V clamp_exp_arg(typename Simd<T>::V y) {
  using S = Simd<T>;
  return S::min(S::set1(VmathCoef<T>::exp_hi), S::max(S::set1(VmathCoef<T>::exp_lo), y));
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V clamp_exp_lo(typename Simd<T>::V y) {
  using S = Simd<T>;
  return S::max(S::set1(VmathCoef<T>::exp_lo), y);
}

// expm1(y) for y in [exp_lo, 2 tanh_sat] (NaN passes): 2^n (e^r - 1) + (2^n - 1) with e^r - 1
// from r + r^2 P(r), so there is no cancellation near 0. NonNeg (y >= 0, so n >= 0): 2^n comes
// from the bits of the rounding sum instead of an ldexp (vscalefps takes two FMA slots on Zen 4).
template <class T, bool NonNeg = false>
TK_VMATH_INLINE typename Simd<T>::V expm1_core(typename Simd<T>::V y) {
  using S = Simd<T>;
  using C = VmathCoef<T>;
  const auto one = S::set1(T(1));
  typename S::V n, two_n;
  if constexpr (NonNeg) {
    const auto sh = S::set1(C::pow2_shifter);
    const auto s = S::fmadd(y, S::set1(C::log2e), sh);
    n = S::sub(s, sh);  // round(y / ln2)
    two_n = S::exp2_shifted(s);
  } else {
    n = S::round(S::mul(y, S::set1(C::log2e)));
    two_n = S::ldexp(one, n);
  }
  auto r = S::fnmadd(n, S::set1(C::ln2_hi), y);
  r = S::fnmadd(n, S::set1(C::ln2_lo), r);
  const auto em = S::fmadd(S::mul(r, r), poly<T>(r, C::exp_p), r);
  return S::fmadd(two_n, em, S::sub(two_n, one));
}

// R(a) = Q(a) exp(a^2/2) for a in [0, gelu_grad_amax] (NaN passes).
template <class T>
TK_VMATH_INLINE typename Simd<T>::V mills(typename Simd<T>::V a) {
  using S = Simd<T>;
  using C = VmathCoef<T>;
  if constexpr (C::tail_table) {
    // The bits of a + 1 pick the interval; f = a - lo is exact (lo = 0 or lo <= a <= 2 lo).
    const auto key = S::add(a, S::set1(T(1)));
    const auto f = S::sub(a, S::template lookup16<21>(C::mills_lo, key));
    constexpr size_t K = sizeof(C::mills_c) / sizeof(C::mills_c[0]);
    auto r = S::template lookup16<21>(C::mills_c[K - 1], key);
    for (size_t j = K - 1; j-- > 0;) {
      r = S::fmadd(r, f, S::template lookup16<21>(C::mills_c[j], key));
    }
    return r;
  } else {
    const auto k = S::set1(C::tail_k);
    const auto t = S::div(k, S::add(k, a));
    return S::mul(t, poly<T>(t, C::tail_p));
  }
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V mul_mills(typename Simd<T>::V v, typename Simd<T>::V a) {
  return Simd<T>::mul(v, mills<T>(a));
}

// exp(-a^2/2) = p 2^n with a^2 as hi + lo: the hi part alone would be off by up to 50 ULP
// of the result at a = 14.
template <class T>
TK_VMATH_INLINE ExpParts<T> exp_neg_half_sq(typename Simd<T>::V a) {
  using S = Simd<T>;
  using C = VmathCoef<T>;
  if constexpr (C::tail_table) {
    const auto s = S::mul(a, a);
    const auto sl = S::fmsub(a, a, s);
    // n = round(-s / ln4) by adding and removing the shifter (an FMA and an add instead of
    // a multiply and a round)
    const auto shifter = S::set1(C::shifter);
    const auto n = S::sub(S::fmadd(s, S::set1(C::neg_half_log2e), shifter), shifter);
    // z = s + n ln4 in [-ln2, ln2], the first step exact
    auto z = S::fmadd(n, S::set1(C::ln4_hi), s);
    z = S::add(z, S::fmadd(n, S::set1(C::ln4_lo), sl));
    return {poly<T>(z, C::enh_p), n};
  } else {
    const auto h = S::mul(a, S::set1(T(-0.5)));  // exact
    const auto y = S::mul(h, a);
    return exp_parts<T, true>(y, S::fmsub(h, a, y));
  }
}

// erfc(x) for x >= 0 (NaN passes): 2 Q(x sqrt 2), with exp(-x^2) from x^2 as hi + lo.
template <class T>
TK_VMATH_INLINE typename Simd<T>::V erfc_pos(typename Simd<T>::V x) {
  using S = Simd<T>;
  using C = VmathCoef<T>;
  x = S::min(S::set1(C::gelu_amax / C::sqrt2), x);
  const auto s = S::mul(x, x);
  const auto e = exp_parts<T, true>(S::neg(s), S::neg(S::fmsub(x, x, s)));
  const auto m = mul_mills<T>(S::add(e.p, e.p), S::mul(x, S::set1(C::sqrt2)));
  return S::ldexp(m, e.n);
}

// sigmoid(u) for u = uh + ul (silu: u = x, gelu tanh form: u = 2z) in parts without selects:
// with u clamped to [-sig_bound, sig_up], e^-u = p 2^-m, m = round(u / ln2), and
// d = 2^m + p: sigmoid(u) = ldexp(1 / d, m), 1 - sigmoid(u) = p / d. 2^m enters d only down
// to 2^min_exp (below, it is negligible beside p >= 0.7), so d is normal, and results are
// scaled last, so that a subnormal one is rounded once from normal operands.
template <class T>
struct SigParts {
  typename Simd<T>::V m, sm, p, d;  // sm = pow2_shifter + m
};

template <class T, bool HasLo, bool Clamp = true>
TK_VMATH_INLINE SigParts<T> sig_parts(typename Simd<T>::V uh, typename Simd<T>::V ul) {
  using S = Simd<T>;
  using C = VmathCoef<T>;
  const auto one = S::set1(T(1));
  const auto u = Clamp ? S::min(S::set1(C::sig_up), S::max(S::set1(-C::sig_bound), uh)) : uh;
  const auto shifter = S::set1(C::pow2_shifter);
  const auto sm = S::fmadd(u, S::set1(C::log2e), shifter);
  const auto m = S::sub(sm, shifter);  // round(u / ln2)
  // r = m ln2 - u, exactly in its first step
  auto r = S::fmsub(m, S::set1(C::ln2_hi), u);
  r = S::fmadd(m, S::set1(C::ln2_lo), r);
  if (HasLo) r = S::sub(r, ul);
  auto p = poly<T>(r, C::exp_p);
  p = S::fmadd(p, r, one);
  p = S::fmadd(p, r, one);
  // 2^max(m, min_exp) from the bits of the rounding sum (vscalefps takes two FMA slots on Zen 4)
  const auto d = S::add(S::exp2_shifted(S::max(S::set1(C::pow2_shifter + C::min_exp), sm)), p);
  return {m, sm, p, d};
}

// xn * sigmoid(u), xn = x clamped below at -sig_bound.
template <class T, bool HasLo>
TK_VMATH_INLINE typename Simd<T>::V x_sigmoid(typename Simd<T>::V xn, typename Simd<T>::V uh,
                                              typename Simd<T>::V ul) {
  using S = Simd<T>;
  const auto e = sig_parts<T, HasLo>(uh, ul);
  return S::ldexp(S::div(xn, e.d), e.m);
}

// gy * d/dx [x sigmoid(u)] = gy s (1 + x u' (1 - s)), s = sigmoid(u): with r = 1 / d,
// gy ldexp(r, m) (1 + x u' p r) (p r rather than a second division: 5% faster, at most
// half an ULP more where x u' (1 - s) is large). The power 2^m is split: its part above 1 makes
// ldexp(r, max(m, 0)) in [1/2, 1] before gy is applied, the part below 1 scales last.
// x is clamped by the caller to where the derivative has reached 0 or 1.
template <class T>
TK_VMATH_INLINE typename Simd<T>::V x_sigmoid_grad(typename Simd<T>::V gy, typename Simd<T>::V x,
                                                   typename Simd<T>::V du, const SigParts<T>& e) {
  using S = Simd<T>;
  const auto one = S::set1(T(1));
  const auto r = S::div(one, e.d);
  const auto sk = S::max(S::set1(VmathCoef<T>::pow2_shifter), e.sm);  // k = max(m, 0)
  const auto f = S::fmadd(S::mul(x, du), S::mul(e.p, r), one);
  const auto rk = S::mul(r, S::exp2_shifted(sk));
  return S::ldexp(S::mul(S::mul(gy, rk), f), S::sub(e.sm, sk));
}

// The sigmoid parts of u = K (x + A x^3) for x in [-gt_lo, gt_hi] (u within the clamp of
// sig_parts, so none is needed), u as
// hi + lo (a few ULP of u would become as many ULP of exp(-u) for |u| up to ~110):
// w = c1 + c3 x^2 and its rounding error, then u = x w, also with its rounding error.
template <class T>
TK_VMATH_INLINE SigParts<T> gelu_tanh_sig(typename Simd<T>::V x, typename Simd<T>::V x2) {
  using S = Simd<T>;
  using C = VmathCoef<T>;
  const auto c1 = S::set1(C::gt_c1_hi), c3 = S::set1(C::gt_c3_hi);
  const auto w = S::fmadd(c3, x2, c1);
  const auto err = S::fmadd(c3, x2, S::sub(c1, w));  // c1 - w is exact
  const auto lo = S::fmadd(c3, S::fmsub(x, x, x2),
                           S::fmadd(S::set1(C::gt_c3_lo), x2, S::set1(C::gt_c1_lo)));
  const auto uh = S::mul(x, w);
  const auto ul = S::fmadd(x, S::add(err, lo), S::fmsub(x, w, uh));
  return sig_parts<T, true, false>(uh, ul);
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V clamp_gelu_tanh(typename Simd<T>::V xn) {
  return Simd<T>::min(Simd<T>::set1(VmathCoef<T>::gt_hi), xn);
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V clamp_sig(typename Simd<T>::V x) {
  using S = Simd<T>;
  const auto b = S::set1(VmathCoef<T>::sig_bound);
  return S::min(b, S::max(S::neg(b), x));
}

}  // namespace vmath_detail

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vexp(typename Simd<T>::V x) {
  using S = Simd<T>;
  const auto e =
      vmath_detail::exp_parts<T, false>(vmath_detail::clamp_exp_arg<T>(x), S::zero());
  return S::ldexp(e.p, e.n);
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vexpm1(typename Simd<T>::V x) {
  using S = Simd<T>;
  using C = VmathCoef<T>;
  // Past 2 tanh_sat, exp(x) - 1 rounds to exp(x). Below, the core holds down to exp_lo
  // (2^n - 1 is -1 to within rounding there).
  const auto big = S::set1(T(2) * C::tanh_sat);
  const auto core = vmath_detail::expm1_core<T>(S::min(big, S::max(S::set1(C::exp_lo), x)));
  return S::select(S::gt(x, big), vexp<T>(x), core);
}

// Natural log: x = m 2^k with m in [sqrt(1/2), sqrt(2)), log m from atanh's series.
// 0 -> -inf, negative -> NaN, inf -> inf; subnormals are scaled up first.
template <class T>
TK_VMATH_INLINE typename Simd<T>::V vlog(typename Simd<T>::V x) {
  using S = Simd<T>;
  using C = VmathCoef<T>;
  const auto one = S::set1(T(1));
  const auto sub = S::lt(x, S::set1(C::min_normal));
  const auto xs = S::select(sub, S::mul(x, S::set1(C::subnormal_scale)), x);
  auto k = S::getexp(xs);
  auto m = S::getmant(xs);
  k = S::sub(k, S::select(sub, S::set1(T(std::is_same<T, float>::value ? 25 : 54)), S::zero()));
  const auto big = S::gt(m, S::set1(C::sqrt2));
  m = S::select(big, S::mul(m, S::set1(T(0.5))), m);
  k = S::select(big, S::add(k, one), k);
  const auto f = S::sub(m, one);  // exact
  const auto sv = S::div(f, S::add(f, S::set1(T(2))));
  const auto s2 = S::mul(sv, sv);
  const auto lm = S::fmadd(S::mul(sv, s2), vmath_detail::poly<T>(s2, C::log_q), S::add(sv, sv));
  auto r = S::fmadd(k, S::set1(C::ln2_hi), S::fmadd(k, S::set1(C::ln2_lo), lm));
  r = S::select(S::eq(x, S::zero()), S::set1(-INFINITY), r);
  r = S::select(S::lt(x, S::zero()), S::set1(NAN), r);
  return S::select(S::mask_or(S::isnan(x), S::eq(x, S::set1(INFINITY))), x, r);
}

// log(1 + z) without losing z when it is small: log(u) corrected by the rounding of u = 1 + z.
template <class T>
TK_VMATH_INLINE typename Simd<T>::V vlog1p(typename Simd<T>::V z) {
  using S = Simd<T>;
  const auto one = S::set1(T(1));
  const auto u = S::add(one, z);
  const auto corr = S::div(S::sub(S::sub(u, one), z), u);
  const auto lu = vlog<T>(u);
  // u = 0 or inf: the correction is NaN and log(u) the answer
  return S::select(S::isnan(corr), lu, S::sub(lu, corr));
}

// e = exp(-|x|) = p 2^n never overflows; x >= 0: 1 / (1 + e), x < 0: ldexp(p / (1 + e), n).
// The quotient is formed from normal numbers and scaled last: dividing a subnormal e costs
// 2.6x the time on Zen 4.
template <class T>
TK_VMATH_INLINE typename Simd<T>::V vsigmoid(typename Simd<T>::V x) {
  using S = Simd<T>;
  return vmath_detail::x_sigmoid<T, false>(S::set1(T(1)), x, x);
}

// tanh|x| = m / (m + 2), m = expm1(2|x|) from |x| clamped to [tanh_tiny, tanh_sat]. Below
// tanh_tiny, tanh x rounds to x and the quotient (from tanh_tiny) exceeds |x|; above it the
// quotient is below |x| (tanh a < a) but for rounding: the lesser of the two is the answer,
// without a compare and a select, and without subnormal arithmetic (~3x the time).
template <class T>
TK_VMATH_INLINE typename Simd<T>::V vtanh(typename Simd<T>::V x) {
  using S = Simd<T>;
  using C = VmathCoef<T>;
  const auto ax = S::abs(x);
  const auto a = S::min(S::set1(C::tanh_sat), S::max(S::set1(C::tanh_tiny), ax));
  const auto m = vmath_detail::expm1_core<T, true>(S::add(a, a));
  // NaN x: the quotient is a quiet NaN, the second operand, which min returns
  return S::or_sign(S::min(ax, S::div(m, S::add(m, S::set1(T(2))))), x);
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V verfc(typename Simd<T>::V x) {
  using S = Simd<T>;
  const auto one = S::set1(T(1));
  const auto ax = S::abs(x);
  const auto small = S::mul(x, vmath_detail::poly<T>(S::mul(x, x), VmathCoef<T>::erf_p));
  const auto big = vmath_detail::erfc_pos<T>(ax);
  const auto far = S::select(S::lt(x, S::zero()), S::sub(S::set1(T(2)), big), big);
  return S::select(S::le(ax, S::set1(T(0.5))), S::sub(one, small), far);
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V verf(typename Simd<T>::V x) {
  using S = Simd<T>;
  const auto ax = S::abs(x);
  const auto small = S::mul(x, vmath_detail::poly<T>(S::mul(x, x), VmathCoef<T>::erf_p));
  const auto far = S::copysign(S::sub(S::set1(T(1)), vmath_detail::erfc_pos<T>(ax)), x);
  return S::select(S::le(ax, S::set1(T(0.5))), small, far);
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vrelu(typename Simd<T>::V x) {
  using S = Simd<T>;
  return S::max(S::zero(), x);  // NaN passes (second operand)
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vleaky_relu(typename Simd<T>::V x, typename Simd<T>::V slope) {
  using S = Simd<T>;
  return S::select(S::gt(x, S::zero()), x, S::mul(x, slope));
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vsilu(typename Simd<T>::V x) {
  using S = Simd<T>;
  const auto xn = S::max(S::set1(-VmathCoef<T>::sig_bound), x);
  return vmath_detail::x_sigmoid<T, false>(xn, x, x);
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vgelu_tanh(typename Simd<T>::V x) {
  using S = Simd<T>;
  // xn = x clamped below at -gt_lo multiplies: it takes the product to -0 there.
  const auto xn = S::max(S::set1(-VmathCoef<T>::gt_lo), x);
  const auto xc = vmath_detail::clamp_gelu_tanh<T>(xn);
  const auto e = vmath_detail::gelu_tanh_sig<T>(xc, S::mul(xc, xc));
  return S::ldexp(S::div(xn, e.d), e.m);
}

// x Phi(x) = relu(x) - |x| Q(|x|): x Q(x) is subtracted for x >= 0 and is the result for
// x < 0, where it is rounded once from unscaled parts.
template <class T>
TK_VMATH_INLINE typename Simd<T>::V vgelu_erf(typename Simd<T>::V x) {
  using S = Simd<T>;
  const auto a = S::min(S::set1(VmathCoef<T>::gelu_amax), S::abs(x));
  const auto e = vmath_detail::exp_neg_half_sq<T>(a);
  const auto aq = S::ldexp(S::mul(S::mul(a, vmath_detail::mills<T>(a)), e.p), e.n);
  return S::sub(vrelu<T>(x), aq);
}

// Derivatives. From the input x where the function is not invertible, from the output y
// where that is cheaper (sigmoid, tanh).

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vrelu_grad(typename Simd<T>::V x) {
  using S = Simd<T>;
  // 0 where x <= 0, else 1 (NaN included, as torch's threshold_backward)
  return S::select(S::le(x, S::zero()), S::zero(), S::set1(T(1)));
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vleaky_relu_grad(typename Simd<T>::V x, typename Simd<T>::V slope) {
  using S = Simd<T>;
  return S::select(S::gt(x, S::zero()), S::set1(T(1)), slope);
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vsigmoid_grad_y(typename Simd<T>::V y) {
  using S = Simd<T>;
  return S::mul(y, S::sub(S::set1(T(1)), y));
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vtanh_grad_y(typename Simd<T>::V y) {
  using S = Simd<T>;
  return S::fnmadd(y, y, S::set1(T(1)));  // 1 - y^2 rounded once
}

// gy * f'(x) for SiLU and the GELUs: the factor gy enters before the final scaling, so a
// subnormal result is rounded once and costs no more than any other (a separate gy * f'(x)
// would multiply a subnormal).
template <class T>
TK_VMATH_INLINE typename Simd<T>::V vsilu_backward(typename Simd<T>::V gy, typename Simd<T>::V x) {
  using S = Simd<T>;
  const auto xc = vmath_detail::clamp_sig<T>(x);
  return vmath_detail::x_sigmoid_grad<T>(gy, xc, S::set1(T(1)),
                                         vmath_detail::sig_parts<T, false>(xc, xc));
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vgelu_tanh_backward(typename Simd<T>::V gy,
                                                        typename Simd<T>::V x) {
  using S = Simd<T>;
  using C = VmathCoef<T>;
  const auto xc = vmath_detail::clamp_gelu_tanh<T>(S::max(S::set1(-C::gt_lo), x));
  const auto x2 = S::mul(xc, xc);
  // u' = K (1 + 3 A x^2) = c1 + 3 c3 x^2
  const auto du = S::fmadd(S::set1(T(3) * C::gt_c3_hi), x2, S::set1(C::gt_c1_hi));
  return vmath_detail::x_sigmoid_grad<T>(gy, xc, du, vmath_detail::gelu_tanh_sig<T>(xc, x2));
}

// Phi(x) + x phi(x) = x < 0: E (R - a c); x >= 0: 1 - E (R - a c), E = exp(-a^2/2), a = |x|,
// c = 1/sqrt(2 pi).
template <class T>
TK_VMATH_INLINE typename Simd<T>::V vgelu_erf_backward(typename Simd<T>::V gy,
                                                       typename Simd<T>::V x) {
  using S = Simd<T>;
  using C = VmathCoef<T>;
  const auto a = S::min(S::set1(C::gelu_grad_amax), S::abs(x));
  const auto e = vmath_detail::exp_neg_half_sq<T>(a);
  const auto dp = S::mul(e.p, S::fnmadd(a, S::set1(C::inv_sqrt_2pi), vmath_detail::mills<T>(a)));
  // one scaling: x < 0: gy E (R - a c), rounded once; x >= 0: gy - gy E (R - a c), rounded once
  const auto neg = S::lt(x, S::zero());
  const auto w = S::ldexp(S::mul(S::select(neg, gy, S::set1(T(1))), dp), e.n);
  return S::select(neg, w, S::fnmadd(gy, w, gy));
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vsilu_grad(typename Simd<T>::V x) {
  return vsilu_backward<T>(Simd<T>::set1(T(1)), x);
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vgelu_tanh_grad(typename Simd<T>::V x) {
  return vgelu_tanh_backward<T>(Simd<T>::set1(T(1)), x);
}

template <class T>
TK_VMATH_INLINE typename Simd<T>::V vgelu_erf_grad(typename Simd<T>::V x) {
  return vgelu_erf_backward<T>(Simd<T>::set1(T(1)), x);
}

}  // namespace TK_NS
}  // namespace tk
