// GEMM driver, Goto/BLIS loop nest, compiled per target:
//   for jc (NC columns: a packed B panel, shared by the threads, in L3)
//     for pc (KC deep)
//       pack the B panel (each element once; bias-gradient column sums taken here)
//       for ic (MC rows: an A block; a row-major A is read in place, others are packed)
//         for jr (NR columns: one B sliver)  for ir (MR rows): register tile
// A row-major B that fits in L2 is not packed at all: the tiles read it in place.
// Threads split M (sharing the B panel) or, for short M, N; never K, so every element of C
// is summed in the same order whatever the thread count. Short M takes the skinny path
// (gemm_skinny-inl.h), M == 1 the matrix-vector path (gemv-inl.h).
#include <cstdint>

#include <omp.h>

#include "ops/gemm.h"
#include "ops/gemm_act-inl.h"
#include "ops/gemm_ctx-inl.h"
#include "ops/gemm_micro-inl.h"
#include "ops/gemm_pack-inl.h"
#include "ops/gemm_skinny-inl.h"
#include "ops/gemv-inl.h"
#include "parallel.h"

namespace tk {
namespace TK_NS {
namespace gemm_detail {

// Rows [m0, m1), columns [n0, n1) of C. With `coop`, every thread of the team runs this
// with all columns, packs its share of the shared panel, and meets the others at a barrier
// before the panel is used and before it is overwritten (a B read in place needs neither).
template <class T>
void work(const Ctx<T>& x, int tid, int team, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
          bool coop) {
  const GemmProblem<T>& P = *x.P;
  constexpr int NR = tile_nr<T>();
  const int64_t MC = x.blk.mc, KC = x.blk.kc, NC = x.blk.nc;
  const ThreadMem<T> mem = x.mem(tid);
  T* panel = coop ? x.panel : mem.b;
  for (int64_t jc = n0; jc < n1; jc += NC) {
    const int64_t nc = min64(NC, n1 - jc);
    const int64_t nsl = (nc + NR - 1) / NR;
    for (int64_t pc = 0;; pc += KC) {
      const int64_t kc = min64(KC, P.k - pc);
      const int64_t s0 = coop ? nsl * tid / team : 0, s1 = coop ? nsl * (tid + 1) / team : nsl;
      const bool shared = coop && !x.b_in_place;
      int64_t edge_ks = NR;
      const T* edge = x.b_in_place ? b_sliver_in_place(P, jc, nsl - 1, nc, pc, kc, mem.edge,
                                                       &edge_ks)
                                   : nullptr;
      if (!x.b_in_place && s0 < s1) {
        const int64_t j = s0 * NR;
        pack_b_panel(P.b + pc * P.b_rs + (jc + j) * P.b_cs, P.b_rs, P.b_cs,
                     min64(s1 * NR, nc) - j, kc, panel + j * kc,
                     P.b_colsum ? P.b_colsum + jc + j : nullptr, mem.sums);
      }
      if (shared) {
#pragma omp barrier
      }
      const Phase ph = phase_of(pc, kc, P.k);
      for (int64_t ic = m0; ic < m1; ic += MC) {
        const int64_t mc = min64(MC, m1 - ic);
        const ABlock<T> ab = a_block(P, ic, mc, pc, kc, mem.a, true);
        for (int64_t s = 0; s < nsl; ++s) {
          const int cols = static_cast<int>(min64(NR, nc - s * NR));
          const T* b = panel + s * NR * kc;
          int64_t b_ks = NR;
          if (x.b_in_place) {
            b = s + 1 < nsl ? P.b + pc * P.b_rs + jc + s * NR : edge;
            b_ks = s + 1 < nsl ? P.b_rs : edge_ks;
          }
          each_tile(ab, mc, [&](int64_t i, int rows, const T* a) {
            run_tile(x, ic + i, jc + s * NR, rows, cols, kc, a, ab.rs, ab.ks, b, b_ks, ph);
          });
        }
      }
      if (shared) {
#pragma omp barrier
      }
      if (pc + kc >= P.k) break;
    }
  }
}

// Column sums of B when A has no rows (no tile runs, so no packing pass takes them).
template <class T>
void colsum_only(const GemmProblem<T>& P, const GemmBlocking& blk) {
  constexpr int NR = tile_nr<T>();
  T* sbuf = static_cast<T*>(tls_scratch.get(static_cast<size_t>(blk.kc * NR) * sizeof(T)));
  for (int64_t j = 0; j < P.n; j += NR)
    for (int64_t pc = 0; pc < P.k; pc += blk.kc)
      pack_b_sliver(P.b + pc * P.b_rs + j * P.b_cs, P.b_rs, P.b_cs,
                    static_cast<int>(min64(NR, P.n - j)), min64(blk.kc, P.k - pc), sbuf,
                    P.b_colsum + j);
}

template <class T>
void gemm(const GemmProblem<T>& P, const GemmBlocking& blk) {
  constexpr int NR = tile_nr<T>();
  if (P.n <= 0) return;
  if (P.m <= 0) {
    if (P.b_colsum) colsum_only(P, blk);
    return;
  }
  const int64_t n_pad = round_up(P.n, NR);
  const int64_t elem = static_cast<int64_t>(sizeof(T));
  // K blocks of equal depth (K = 1100 as 552 + 548, not 1024 + 76). Every block size depends
  // on the shape only, never on the thread count, so neither does the order of the sums.
  Ctx<T> x;
  x.blk = blk;
  x.blk.kc = balanced(P.k, blk.kc);
  const int64_t KC = x.blk.kc, MC = blk.mc;
  // The skinny path's panels: kc_skinny × nc_skinny takes a quarter of L2 (two are in use).
  auto skinny_depth = [&](int64_t nc) {
    return balanced(P.k, max64(min64(blk.l2_bytes / 4 / (nc * elem), blk.kc), 32));
  };
  x.nc_skinny = min64(n_pad, blk.nc_skinny);
  x.kc_skinny = skinny_depth(x.nc_skinny);
  // When the tiles of one sliver already cover a memory latency, a panel half as wide and
  // twice as deep: the tiles add to C half as often, and the prefetch regime (kNearSteps)
  // is unchanged. (32×4096×4096 float, 1 thread: 3.6% faster, paired median of 31 rounds;
  // at 16 rows the deeper panel switched the regime and lost 10-15%.)
  const int64_t half_nc = round_up(x.nc_skinny / 2, NR);
  if ((P.m + kMR - 1) / kMR * x.kc_skinny >= kNearSteps && half_nc < x.nc_skinny) {
    x.nc_skinny = half_nc;
    x.kc_skinny = skinny_depth(half_nc);
  }
  x.b_in_place = P.b_cs == 1 && !P.b_colsum && P.k * n_pad * elem <= blk.l2_bytes;
  const bool skinny_form = P.m <= kSkinnyRows;

  int nt = num_threads();
  if (omp_in_parallel() || P.m * P.n * max64(P.k, 1) < (int64_t{1} << 17)) nt = 1;
  // Threads split M, sharing the packed B panel, when each gets at least one full A block
  // and A must be packed (else each thread would pack all of A). With A read in place they
  // split N when each gets a few slivers: each packs its own columns of B, and they never
  // wait for each other (a barrier costs a whole time slice when a core is shared).
  const bool a_in_place = P.a_cs == 1;
  const bool wide = P.n >= nt * 4 * NR;
  const bool split_m = nt > 1 && !skinny_form && P.m >= nt * MC && !(a_in_place && wide);
  if (!split_m) nt = static_cast<int>(min64(nt, (P.n + NR - 1) / NR));

  const bool gemv_form = P.m == 1 && !P.b_colsum && (P.b_cs == 1 || P.b_rs == 1);
  const int64_t a_elems = max64(MC, round_up(kSkinnyRows, kMR)) * KC;
  const int64_t b_elems = split_m || x.b_in_place ? 0
                          : skinny_form
                              ? max64(2 * x.kc_skinny * (x.nc_skinny + 64 / elem) + 64, KC * NR)
                              : KC * blk.nc;
  const int64_t edge_elems = KC * NR;
  const int64_t sum_elems = max64(blk.nc, x.nc_skinny);
  const int64_t slice = round_up(a_elems + b_elems + edge_elems + sum_elems, 64 / elem);
  const int64_t shared = split_m ? KC * blk.nc : 0;
  // GEMV: the bias, x gathered, the sums (line-aligned)
  const int64_t line = 64 / elem, gemv_acc = round_up(n_pad, line) + round_up(P.k, line);
  const int64_t total = gemv_form ? gemv_acc + n_pad : n_pad + shared + nt * slice;
  T* mem = static_cast<T*>(tls_scratch.get(static_cast<size_t>(total) * sizeof(T)));

  T* bias = nullptr;
  if (P.bias) {
    bias = mem;
    for (int64_t j = 0; j < P.n; ++j) bias[j] = P.bias[j * P.bias_stride];
    for (int64_t j = P.n; j < n_pad; ++j) bias[j] = T(0);
  }
  if (gemv_form && gemv(P, bias, mem + n_pad, mem + gemv_acc, blk.l2_bytes)) return;

  x.P = &P;
  x.bias = bias;
  for (int r = 1; r <= kMR; ++r) {
    x.mid[r] = pick_tile<T>(r, LinearAct::none);
    x.fin[r] = pick_tile<T>(r, P.act);
  }
  x.panel = mem + n_pad;
  x.per_thread = mem + n_pad + shared;
  x.slice = slice;
  x.a_elems = a_elems;
  x.b_elems = b_elems;
  x.edge_elems = edge_elems;

  auto run = [&](int t, int team) {
    if (split_m) {
      // Row ranges in whole MR slivers; every thread joins every barrier, even with no rows.
      const int64_t sl = (P.m + kMR - 1) / kMR;
      work(x, t, team, min64(P.m, sl * t / team * kMR), min64(P.m, sl * (t + 1) / team * kMR), 0,
           P.n, true);
      return;
    }
    const int64_t sl = (P.n + NR - 1) / NR;
    const int64_t c0 = min64(P.n, sl * t / team * NR), c1 = min64(P.n, sl * (t + 1) / team * NR);
    if (c0 >= c1) return;
    if (skinny_form)
      skinny(x, t, c0, c1);
    else
      work(x, t, team, 0, P.m, c0, c1, false);
  };
  if (nt == 1) {
    run(0, 1);
    return;
  }
#pragma omp parallel num_threads(nt)
  run(omp_get_thread_num(), omp_get_num_threads());
}

}  // namespace gemm_detail

extern const GemmTable gemm_table = {
    {gemm_detail::kMR, gemm_detail::tile_nr<float>()},
    {gemm_detail::kMR, gemm_detail::tile_nr<double>()},
    &gemm_detail::gemm<float>,
    &gemm_detail::gemm<double>,
    &gemm_detail::act_grad<float>,
    &gemm_detail::act_grad<double>,
};

}  // namespace TK_NS
}  // namespace tk
