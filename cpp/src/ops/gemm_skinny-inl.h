// Short M (up to kSkinnyRows rows): each element of B is used by few tiles, so B is read
// once, from memory, packed into a panel that stays in L2 while all of M runs over it; A is
// read in place when it is row-major.
//
// A row-major B goes kc_skinny rows × nc_skinny columns at a time through a panel that is
// refilled while the tiles run (skinny_rows).
// Any other layout of B goes one KC×NR sliver at a time (a column of B is contiguous in k).
#pragma once
#include <cstdint>

#include "ops/gemm_ctx-inl.h"

namespace tk {
namespace TK_NS {
namespace gemm_detail {

constexpr int64_t kSkinnyRows = 64;
// Tile steps of one sliver (a few ns each) that cover a memory latency with room to spare.
constexpr int64_t kNearSteps = 256;

// One kc×nc block of B in the skinny loop order (column chunks outer, K blocks inner).
struct SkinnyBlock {
  int64_t jc, nc, pc, kc;
  bool valid;
};

template <class T>
SkinnyBlock next_block(const Ctx<T>& x, const SkinnyBlock& b, int64_t n1) {
  const int64_t K = x.P->k;
  if (b.pc + b.kc < K) return {b.jc, b.nc, b.pc + b.kc, min64(x.kc_skinny, K - b.pc - b.kc), true};
  const int64_t jc = b.jc + b.nc;
  if (jc >= n1) return {0, 0, 0, 0, false};
  return {jc, min64(x.nc_skinny, n1 - jc), 0, min64(x.kc_skinny, K), true};
}

template <class T>
void skinny_tiles(const Ctx<T>& x, const ABlock<T>& ab, const T* panel, int64_t jc, int64_t s,
                  int64_t nc, int64_t kc, Phase ph) {
  const GemmProblem<T>& P = *x.P;
  constexpr int NR = tile_nr<T>();
  const int cols = static_cast<int>(min64(NR, nc - s * NR));
  each_tile(ab, P.m, [&](int64_t i, int rows, const T* a) {
    run_tile(x, i, jc + s * NR, rows, cols, kc, a, ab.rs, ab.ks, panel + s * NR * kc, NR, ph);
  });
}

// Rows [k0, k1) of a row-major block of B (nc columns) copied as rows of a panel with row
// stride `ld`, zero-filled up to a whole number of slivers.
template <class T>
void copy_b_rows(const T* b, int64_t b_rs, int64_t nc, int64_t k0, int64_t k1, T* dst,
                 int64_t ld) {
  using S = Simd<T>;
  constexpr int64_t L = static_cast<int64_t>(S::N);
  const int64_t full = nc / L * L, padded = round_up(nc, tile_nr<T>());
  for (int64_t k = k0; k < k1; ++k) {
    const T* src = b + k * b_rs;
    T* d = dst + k * ld;
    for (int64_t j = 0; j < full; j += L) S::storeu(d + j, S::loadu(src + j));
    if (full < nc)
      S::storeu(d + full, S::load_partial(src + full, static_cast<size_t>(nc - full)));
    for (int64_t j = round_up(nc, L); j < padded; j += L) S::storeu(d + j, S::zero());
  }
}

// Row-major B, no column sums: a double-buffered panel that keeps B's row-major layout
// (rows padded by a cache line, so a sliver's rows do not share cache sets) and is filled
// progressively: after the tiles of each sliver, a few more rows of the next block are
// copied, their lines fetched by software prefetch while the tiles computed. Memory then
// streams B in contiguous row runs while the cores multiply.
template <class T>
void skinny_rows(const Ctx<T>& x, const ThreadMem<T>& mem, int64_t n0, int64_t n1) {
  const GemmProblem<T>& P = *x.P;
  constexpr int NR = tile_nr<T>();
  const int64_t tiles_m = (P.m + kMR - 1) / kMR;
  const int64_t ld = x.nc_skinny + 64 / static_cast<int64_t>(sizeof(T));
  T* buf[2] = {mem.b, mem.b + x.kc_skinny * ld};
  SkinnyBlock cur{n0, min64(x.nc_skinny, n1 - n0), 0, min64(x.kc_skinny, P.k), true};
  copy_b_rows(P.b + n0, P.b_rs, cur.nc, 0, cur.kc, buf[0], ld);
  for (int idx = 0;; ++idx) {
    const SkinnyBlock nxt = next_block(x, cur, n1);
    T* cp = buf[idx & 1];
    T* np = buf[(idx + 1) & 1];
    const T* nsrc = nxt.valid ? P.b + nxt.pc * P.b_rs + nxt.jc : nullptr;
    const ABlock<T> ab = a_block(P, 0, P.m, cur.pc, cur.kc, mem.a, true);
    const Phase ph = phase_of(cur.pc, cur.kc, P.k);
    const int64_t nsl = (cur.nc + NR - 1) / NR;
    const int64_t nk = nxt.valid ? nxt.kc : 0;
    const bool near = tiles_m * cur.kc >= kNearSteps;
    // With whole cache lines and no padding in the next block's rows, the rows fetched
    // during sliver s are copied during sliver s+1 (the last ones after the last sliver).
    const int64_t row_bytes = nxt.nc * static_cast<int64_t>(sizeof(T));
    const bool ride = near && nxt.valid && nxt.nc % NR == 0 && row_bytes % 64 == 0;
    const int64_t steps = max64(tiles_m * stream_steps<T>(cur.kc), 1);
    for (int64_t s = 0; s < nsl; ++s) {
      // Rows copied after sliver s (during sliver s+1 when riding): [nk*s/nsl, nk*(s+1)/nsl).
      // A fetched line should arrive in time but not wait long (it can be evicted): when the
      // tiles of one sliver take well over a memory latency, they fetch their own rows, into
      // L1; otherwise the rows of the next sliver, into L2 (the first sliver fetches both).
      BlockStream pf;
      const int64_t r0 = near ? nk * s / nsl : (s == 0 ? 0 : nk * (s + 1) / nsl);
      const int64_t r1 = min64(nk, near ? nk * (s + 1) / nsl : nk * (s + 2) / nsl);
      if (r1 > r0) {
        pf.row = reinterpret_cast<const char*>(nsrc + r0 * P.b_rs);
        pf.bytes = row_bytes;
        pf.stride = P.b_rs * static_cast<int64_t>(sizeof(T));
        pf.rows_left = r1 - r0;
        const int64_t lines = pf.rows_left * ((pf.bytes + 63) / 64);
        // Into L1 evenly over the sliver: 2-4% faster at 32 and 64 rows than the same
        // lines fetched in the sliver's first steps.
        if (near) {
          pf.p_lines = lines;
          pf.p_steps = steps;
        } else {
          pf.per_step = static_cast<int>((lines + steps - 1) / steps);
        }
      }
      const int64_t c0 = ride && s > 0 ? nk * (s - 1) / nsl : 0;
      const int64_t c1 = ride && s > 0 ? nk * s / nsl : 0;
      if (c1 > c0) {
        pf.c_src = reinterpret_cast<const char*>(nsrc + c0 * P.b_rs);
        pf.c_dst = reinterpret_cast<char*>(np + c0 * ld);
        pf.c_bytes = row_bytes;
        pf.c_src_stride = P.b_rs * static_cast<int64_t>(sizeof(T));
        pf.c_dst_stride = ld * static_cast<int64_t>(sizeof(T));
        pf.c_rows_left = c1 - c0;
        pf.c_lines = pf.c_rows_left * (row_bytes / 64);
        pf.c_steps = steps;
      }
      const bool use = pf.per_step > 0 || pf.p_lines > 0 || pf.c_rows_left > 0;
      const int cols = static_cast<int>(min64(NR, cur.nc - s * NR));
      each_tile(ab, P.m, [&](int64_t i, int rows, const T* a) {
        run_tile(x, i, cur.jc + s * NR, rows, cols, cur.kc, a, ab.rs, ab.ks, cp + s * NR, ld,
                 ph, use ? &pf : nullptr);
      });
      pf.finish<T>();
      const int64_t k0 = nk * s / nsl, k1 = nk * (s + 1) / nsl;
      if (k1 > k0 && (!ride || s + 1 == nsl)) copy_b_rows(nsrc, P.b_rs, nxt.nc, k0, k1, np, ld);
    }
    if (!nxt.valid) break;
    cur = nxt;
  }
}

// All rows of C, columns [n0, n1).
template <class T>
void skinny(const Ctx<T>& x, int tid, int64_t n0, int64_t n1) {
  const GemmProblem<T>& P = *x.P;
  constexpr int NR = tile_nr<T>();
  const ThreadMem<T> mem = x.mem(tid);
  if (x.b_in_place) {
    for (int64_t pc = 0;; pc += x.blk.kc) {
      const int64_t kc = min64(x.blk.kc, P.k - pc);
      const ABlock<T> ab = a_block(P, 0, P.m, pc, kc, mem.a, true);
      for (int64_t s = 0; s * NR < n1 - n0; ++s) {
        int64_t b_ks;
        const T* b = b_sliver_in_place(P, n0, s, n1 - n0, pc, kc, mem.edge, &b_ks);
        const int cols = static_cast<int>(min64(NR, n1 - n0 - s * NR));
        each_tile(ab, P.m, [&](int64_t i, int rows, const T* a) {
          run_tile(x, i, n0 + s * NR, rows, cols, kc, a, ab.rs, ab.ks, b, b_ks,
                   phase_of(pc, kc, P.k));
        });
      }
      if (pc + kc >= P.k) break;
    }
    return;
  }
  if (P.b_cs == 1 && !P.b_colsum) {
    skinny_rows(x, mem, n0, n1);
    return;
  }
  const bool rows_form = P.b_cs == 1;
  const int64_t KC = rows_form ? x.kc_skinny : x.blk.kc;
  const int64_t NC = rows_form ? x.nc_skinny : NR;
  for (int64_t jc = n0; jc < n1; jc += NC) {
    const int64_t nc = min64(NC, n1 - jc);
    for (int64_t pc = 0;; pc += KC) {
      const int64_t kc = min64(KC, P.k - pc);
      pack_b_panel(P.b + pc * P.b_rs + jc * P.b_cs, P.b_rs, P.b_cs, nc, kc, mem.b,
                   P.b_colsum ? P.b_colsum + jc : nullptr, mem.sums);
      const ABlock<T> ab = a_block(P, 0, P.m, pc, kc, mem.a, true);
      for (int64_t s = 0; s * NR < nc; ++s)
        skinny_tiles(x, ab, mem.b, jc, s, nc, kc, phase_of(pc, kc, P.k));
      if (pc + kc >= P.k) break;
    }
  }
}

}  // namespace gemm_detail
}  // namespace TK_NS
}  // namespace tk
