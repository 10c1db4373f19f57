// GEMM register tile and its epilogue, written once against Simd<T> and compiled per
// target. One call multiplies an MRK×kc sliver of A by a kc×NR sliver of B into MRK×NV
// vector accumulators, then either stores them into C (the first K block), adds them to C
// (middle blocks), or, on the last block, adds C and the bias, writes the pre-activation
// when asked, applies the activation and stores C once.
#pragma once
#include <cstdint>
#include <type_traits>

#include "ops/gemm.h"
#include "ops/gemm_act-inl.h"

namespace tk {
namespace TK_NS {
namespace gemm_detail {

// Register tile per target: MR rows of A times NV vectors of B. AVX-512 has 32 vector
// registers (6×4 accumulators + 4 B vectors + a broadcast), AVX2 16 (6×2 + 2 + 1),
// NEON 32 (8×3), and the scalar baseline a 4×4 block of scalars.
#if defined(__AVX512F__)
constexpr int kMR = 6, kNV = 4;
#elif defined(__AVX2__)
constexpr int kMR = 6, kNV = 2;
#elif defined(__ARM_NEON) || defined(__aarch64__)
constexpr int kMR = 8, kNV = 3;
#else
constexpr int kMR = 4, kNV = 4;
#endif

template <class T>
constexpr int tile_nr() {
  return kNV * static_cast<int>(Simd<T>::N);
}

// a*b + c. The x86 baseline has no FMA instruction (std::fma would be a library call
// per element), so the scalar target rounds twice there; every vector target fuses.
template <class S>
inline typename S::V madd(typename S::V a, typename S::V b, typename S::V c) {
#if defined(__FMA__) || defined(__aarch64__) || defined(__ARM_NEON)
  return S::fmadd(a, b, c);
#else
  return S::add(S::mul(a, b), c);
#endif
}

enum class Phase : int {
  first,   // C = acc
  middle,  // C += acc
  last,    // C = act(C + acc + bias)
  only,    // C = act(acc + bias): K fits one block
};

template <class T>
struct TileOut {
  T* c;
  int64_t c_rs;
  T* pre;  // null: no pre-activation output
  int64_t pre_rs;
  const T* bias;  // this tile's first column in a zero-padded bias, or null
};

// One row of accumulators to memory. Full: all NV vectors are inside C (no column tail).
template <class T, LinearAct A, bool Full>
inline void store_row(typename Simd<T>::V* acc, T* c, T* pre, const T* bias, int nv, Phase ph) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int L = static_cast<int>(S::N);
#pragma GCC unroll 8
  for (int v = 0; v < kNV; ++v) {
    const int cnt = Full ? L : nv - v * L;
    if (!Full && cnt <= 0) break;
    const bool whole = Full || cnt >= L;
    auto load = [&](const T* p) {
      return whole ? S::loadu(p) : S::load_partial(p, static_cast<size_t>(cnt));
    };
    auto store = [&](T* p, V x) {
      if (whole)
        S::storeu(p, x);
      else
        S::store_partial(p, x, static_cast<size_t>(cnt));
    };
    V x = acc[v];
    if (ph == Phase::middle || ph == Phase::last) x = S::add(load(c + v * L), x);
    if (ph == Phase::last || ph == Phase::only) {
      if (bias) x = S::add(x, S::loadu(bias + v * L));
      if (pre) store(pre + v * L, x);
      x = ActFwd<T, A>::apply(x);
    }
    store(c + v * L, x);
  }
}

// Work on the next block of B that rides along with the tiles, a little per step of k:
// software prefetch of a 2-D region (rows of `bytes` bytes, `stride` bytes apart), a few
// cache lines per call, in address order, so the tiles of one block of B fetch the next
// block while they compute; and, optionally, the copy of rows fetched earlier into the
// next panel, one cache line at a time. The tiles are bound by the FMA pipes with load and
// store slots to spare, so a copy spread among them costs little, where the same copy done
// between slivers stalls the FMAs for its whole length.
struct BlockStream {
  const char* row = nullptr;
  int64_t off = 0, bytes = 0, stride = 0, rows_left = 0;
  // Either per_step lines a step toward L2 from the first step on, or p_lines lines into
  // all cache levels spread evenly over p_steps steps (a line fetched early into L1 waits
  // there longer and may be evicted before it is copied).
  int per_step = 0;
  int64_t p_lines = 0, p_steps = 1, p_credit = 0;
  // The copy: rows of `c_bytes` (a whole number of cache lines) from c_src to c_dst,
  // c_lines lines over c_steps steps (spread evenly).
  const char* c_src = nullptr;
  char* c_dst = nullptr;
  int64_t c_off = 0, c_bytes = 0, c_src_stride = 0, c_dst_stride = 0, c_rows_left = 0;
  int64_t c_lines = 0, c_steps = 1, c_credit = 0;

  template <int Hint>
  void fetch_line() {
    __builtin_prefetch(row + off, 0, Hint);
    off += 64;
    if (off >= bytes) {
      off = 0;
      row += stride;
      --rows_left;
    }
  }
  template <class T>
  void step() {
    for (int i = 0; i < per_step && rows_left > 0; ++i) fetch_line<2>();
    if (p_lines > 0)
      for (p_credit += p_lines; p_credit >= p_steps && rows_left > 0; p_credit -= p_steps)
        fetch_line<3>();
    if (c_rows_left > 0)
      for (c_credit += c_lines; c_credit >= c_steps && c_rows_left > 0; c_credit -= c_steps)
        copy_line<T>();
  }
  // Whatever the steps left of the copy.
  template <class T>
  void finish() {
    while (c_rows_left > 0) copy_line<T>();
  }
  template <class T>
  void copy_line() {
    using S = Simd<T>;
    constexpr int64_t L = static_cast<int64_t>(S::N);
    constexpr int64_t kLine = 64 / static_cast<int64_t>(sizeof(T));
    const T* src = reinterpret_cast<const T*>(c_src + c_off);
    T* dst = reinterpret_cast<T*>(c_dst + c_off);
#pragma GCC unroll 16
    for (int64_t j = 0; j < kLine; j += L) S::storeu(dst + j, S::loadu(src + j));
    c_off += 64;
    if (c_off >= c_bytes) {
      c_off = 0;
      c_src += c_src_stride;
      c_dst += c_dst_stride;
      --c_rows_left;
    }
  }
};

// k steps of a tile per BlockStream step (ceil(kc / stream_every) steps a tile): the
// stream's bookkeeping, some 20 instructions, sits beside 24 FMA cycles in an AVX-512
// float tile step but beside 6 in an AVX2 one.
template <class T>
constexpr int64_t stream_every() {
  constexpr int64_t row = tile_nr<T>() * static_cast<int64_t>(sizeof(T));
  return row >= 256 ? 1 : 256 / row;
}

// BlockStream steps of one tile of depth kc.
template <class T>
constexpr int64_t stream_steps(int64_t kc) {
  return (kc + stream_every<T>() - 1) / stream_every<T>();
}

// The micro-kernel. A element (r, k) is at a[r*a_rs + k*a_ks] (a packed sliver has
// a_rs = 1, a_ks = MR; a row-major A read in place has a_rs = lda, a_ks = 1); B row k
// holds NR contiguous elements at b + k*b_ks (b_ks = NR when packed). nv <= NR columns
// of C are stored. `pf`, when not null, advances one step per k.
template <class T, int MRK, LinearAct A>
void tile(int64_t kc, const T* a, int64_t a_rs, int64_t a_ks, const T* b, int64_t b_ks,
          BlockStream* pf, const TileOut<T>& o, int nv, Phase ph) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int L = static_cast<int>(S::N);
  constexpr int NR = kNV * L;
  V acc[MRK][kNV];
#pragma GCC unroll 16
  for (int r = 0; r < MRK; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < kNV; ++v) acc[r][v] = S::zero();
  // Bring C toward L1 while the products run: the stores at the end then do not wait.
  constexpr int kLines = static_cast<int>((NR * sizeof(T) + 63) / 64);
#pragma GCC unroll 16
  for (int r = 0; r < MRK; ++r)
#pragma GCC unroll 8
    for (int l = 0; l < kLines; ++l) __builtin_prefetch(o.c + r * o.c_rs + l * (64 / sizeof(T)), 1);
  int64_t ro[MRK];
#pragma GCC unroll 16
  for (int r = 0; r < MRK; ++r) ro[r] = r * a_rs;
  // Two copies of the loop: the stream's code inside the only loop, even behind a test,
  // slowed the tiles that have no stream (every other GEMM) by 2-5%.
  auto steps = [&](auto with_stream) {
    int64_t until_step = 1;
    for (int64_t k = 0; k < kc; ++k) {
      V bv[kNV];
#pragma GCC unroll 8
      for (int v = 0; v < kNV; ++v) bv[v] = S::loadu(b + v * L);
      if constexpr (decltype(with_stream)::value) {
        if (stream_every<T>() == 1 || --until_step == 0) {
          until_step = stream_every<T>();
          pf->template step<T>();
        }
      }
#pragma GCC unroll 16
      for (int r = 0; r < MRK; ++r) {
        const V av = S::set1(a[ro[r]]);
#pragma GCC unroll 8
        for (int v = 0; v < kNV; ++v) acc[r][v] = madd<S>(av, bv[v], acc[r][v]);
      }
      a += a_ks;
      b += b_ks;
    }
  };
  if (pf)
    steps(std::true_type{});
  else
    steps(std::false_type{});
  if (nv == NR) {
#pragma GCC unroll 16
    for (int r = 0; r < MRK; ++r)
      store_row<T, A, true>(acc[r], o.c + r * o.c_rs, o.pre ? o.pre + r * o.pre_rs : nullptr,
                            o.bias, nv, ph);
  } else {
#pragma GCC unroll 16
    for (int r = 0; r < MRK; ++r)
      store_row<T, A, false>(acc[r], o.c + r * o.c_rs, o.pre ? o.pre + r * o.pre_rs : nullptr,
                             o.bias, nv, ph);
  }
}

template <class T>
using TileFn = void (*)(int64_t, const T*, int64_t, int64_t, const T*, int64_t, BlockStream*,
                        const TileOut<T>&, int, Phase);

template <class T, LinearAct A, int R>
TileFn<T> tile_rows(int rows) {
  if constexpr (R == 1)
    return &tile<T, 1, A>;
  else
    return rows == R ? &tile<T, R, A> : tile_rows<T, A, R - 1>(rows);
}

// The tile for `rows` (1..MR) rows of A with activation `act` on its last K block.
template <class T>
TileFn<T> pick_tile(int rows, LinearAct act) {
  switch (act) {
    case LinearAct::relu:
      return tile_rows<T, LinearAct::relu, kMR>(rows);
    case LinearAct::sigmoid:
      return tile_rows<T, LinearAct::sigmoid, kMR>(rows);
    case LinearAct::tanh:
      return tile_rows<T, LinearAct::tanh, kMR>(rows);
    case LinearAct::gelu:
      return tile_rows<T, LinearAct::gelu, kMR>(rows);
    case LinearAct::gelu_tanh:
      return tile_rows<T, LinearAct::gelu_tanh, kMR>(rows);
    case LinearAct::silu:
      return tile_rows<T, LinearAct::silu, kMR>(rows);
    case LinearAct::none:
      break;
  }
  return tile_rows<T, LinearAct::none, kMR>(rows);
}

}  // namespace gemm_detail
}  // namespace TK_NS
}  // namespace tk
