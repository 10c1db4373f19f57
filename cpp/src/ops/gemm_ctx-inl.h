// State one GEMM call shares between its loops and threads, and the scratch memory that
// holds the packed operands.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <new>

#include "ops/gemm.h"
#include "ops/gemm_micro-inl.h"
#include "ops/gemm_pack-inl.h"

namespace tk {
namespace TK_NS {
namespace gemm_detail {

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }
// The depth of equal blocks (a multiple of 8) that cover k in as few blocks of at most kc.
inline int64_t balanced(int64_t k, int64_t kc) {
  if (k <= kc) return kc;
  const int64_t blocks = (k + kc - 1) / kc;
  return min64(kc, round_up((k + blocks - 1) / blocks, 8));
}

// Grow-only scratch memory of the calling thread: packing buffers are reused across calls,
// so a steady training loop neither allocates nor faults pages in.
struct Scratch {
  void* p = nullptr;
  size_t bytes = 0;
  void* get(size_t n) {
    if (n > bytes) {
      std::free(p);
      bytes = 0;
      p = std::aligned_alloc(64, static_cast<size_t>(round_up(static_cast<int64_t>(n), 64)));
      if (p == nullptr) throw std::bad_alloc();
      bytes = n;
    }
    return p;
  }
  ~Scratch() { std::free(p); }
};
inline thread_local Scratch tls_scratch;

// Per-thread scratch: an A block, a B panel (a thread's own, or the skinny path's), the
// zero-padded last sliver of a B read in place, column sums.
template <class T>
struct ThreadMem {
  T* a;
  T* b;
  T* edge;
  T* sums;
};

template <class T>
struct Ctx {
  const GemmProblem<T>* P;
  GemmBlocking blk;
  int64_t kc_skinny, nc_skinny;  // blocks of the skinny row-major path
  // A row-major B small enough to stay in L2 is read in place by the tiles: packing it
  // would cost a pass over it and buy nothing.
  bool b_in_place;
  const T* bias;  // zero-padded to a multiple of NR, or null
  TileFn<T> mid[kMR + 1], fin[kMR + 1];
  T* panel;  // the shared B panel when threads split M
  T* per_thread;
  int64_t slice, a_elems, b_elems, edge_elems;
  ThreadMem<T> mem(int tid) const {
    T* base = per_thread + tid * slice;
    T* b = base + a_elems;
    return {base, b, b + b_elems, b + b_elems + edge_elems};
  }
};

inline Phase phase_of(int64_t pc, int64_t kc, int64_t k) {
  const bool last = pc + kc >= k;
  return pc == 0 ? (last ? Phase::only : Phase::first) : (last ? Phase::last : Phase::middle);
}

// The tile at C(i, j): rows × cols, with the activation only on the last K block.
template <class T>
inline void run_tile(const Ctx<T>& x, int64_t i, int64_t j, int rows, int cols, int64_t kc,
                     const T* a, int64_t a_rs, int64_t a_ks, const T* b, int64_t b_ks, Phase ph,
                     BlockStream* pf = nullptr) {
  const GemmProblem<T>& P = *x.P;
  const TileOut<T> o{P.c + i * P.c_rs + j, P.c_rs, P.pre ? P.pre + i * P.pre_rs + j : nullptr,
                     P.pre_rs, x.bias ? x.bias + j : nullptr};
  const TileFn<T> fn = (ph == Phase::last || ph == Phase::only) ? x.fin[rows] : x.mid[rows];
  fn(kc, a, a_rs, a_ks, b, b_ks, pf, o, cols, ph);
}

// Sliver s (NR columns from jc + s*NR) of the kc×nc block of B at row pc, for a tile: read in
// place, or the zero-padded copy in `edge` when it is the partial last sliver (the tile loads
// whole rows of NR). Returns the row stride the tile walks with.
template <class T>
const T* b_sliver_in_place(const GemmProblem<T>& P, int64_t jc, int64_t s, int64_t nc,
                           int64_t pc, int64_t kc, T* edge, int64_t* b_ks) {
  constexpr int NR = tile_nr<T>();
  const T* b = P.b + pc * P.b_rs + jc + s * NR;
  const int cols = static_cast<int>(nc - s * NR < NR ? nc - s * NR : NR);
  if (cols == NR) {
    *b_ks = P.b_rs;
    return b;
  }
  pack_b_sliver(b, P.b_rs, 1, cols, kc, edge, static_cast<T*>(nullptr));
  *b_ks = NR;
  return edge;
}

// A block of rows [0, mrows) × kc: read in place when A is row-major, else packed into
// `buf`. Returns the first sliver; the next is `sliver_stride` further.
template <class T>
struct ABlock {
  const T* a;
  int64_t rs, ks, sliver_stride;
  // Read in place A walks k with unit stride; a packed sliver steps kMR per k.
  static_assert(kMR > 1, "a packed sliver must be told from A read in place");
  bool in_place() const { return ks == 1; }
  // Row i of the block: any row when read in place, a sliver's first row when packed.
  const T* row(int64_t i) const { return in_place() ? a + i * rs : a + (i / kMR) * sliver_stride; }
  // The end of the tile that starts at row i, of `tiles` over m rows. Tiles have kMR rows
  // and the last one the rest, except that when A is read in place and the rest is a third
  // of a tile or less, the rows are spread evenly: a 2-row tile loads as much of B per step
  // as a full one for a third of the FMAs (32x4096x4096 float as 5,5,6,5,5,6 rows, not
  // 5x6 + 2: 5.6% faster; at 64 rows 10x6 + 4 beats 11 tiles of 5 or 6 by 1.4%).
  int64_t tile_end(int64_t i, int64_t t, int64_t tiles, int64_t m) const {
    const int64_t rest = m % kMR;
    if (in_place() && rest > 0 && rest * 3 <= kMR) return m * (t + 1) / tiles;
    return i + kMR < m ? i + kMR : m;
  }
};

// f(i, rows, a) for each tile of rows of an m-row block, split as ABlock::tile_end says.
template <class T, class F>
void each_tile(const ABlock<T>& ab, int64_t m, F&& f) {
  const int64_t tiles = (m + kMR - 1) / kMR;
  for (int64_t t = 0, i = 0; t < tiles; ++t) {
    const int64_t e = ab.tile_end(i, t, tiles, m);
    f(i, static_cast<int>(e - i), ab.row(i));
    i = e;
  }
}

template <class T>
ABlock<T> a_block(const GemmProblem<T>& P, int64_t i0, int64_t mrows, int64_t pc, int64_t kc,
                  T* buf, bool in_place) {
  if (in_place && P.a_cs == 1) return {P.a + i0 * P.a_rs + pc, P.a_rs, 1, kMR * P.a_rs};
  pack_a_block(P.a + i0 * P.a_rs + pc * P.a_cs, P.a_rs, P.a_cs, mrows, kc, buf);
  return {buf, 1, kMR, kMR * kc};
}

}  // namespace gemm_detail
}  // namespace TK_NS
}  // namespace tk
