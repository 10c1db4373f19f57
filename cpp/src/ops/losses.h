// Internal interface of the loss kernels (ops/losses-inl.h).
#pragma once
#include <cstdint>

#include "trainkern/dispatch.h"
#include "trainkern/kernels.h"

namespace tk {

// Per-row scalars handed from the kernel to the row-order reduction.
template <class T>
struct LossTableT {
  // Writes row_loss (double, n_rows) and grad; see tk::softmax_cross_entropy.
  void (*cross_entropy)(const T* logits, const int64_t* labels, const T* probs, int64_t n_rows,
                        int64_t n_cls, double* row_loss, T* grad, const CrossEntropyOptions& o);
  // Writes one partial sum per block of kMseBlock elements into partial, and elem_loss/grad.
  void (*mse)(const T* pred, const T* target, int64_t n, Reduction r, double* partial,
              T* elem_loss, T* grad);
};

struct LossTable {
  LossTableT<float> f32;
  LossTableT<double> f64;
  // See tk::check_class_labels.
  int64_t (*check_labels)(const int64_t* labels, int64_t n, int64_t n_cls, int64_t ignore,
                          int64_t* count);
};

TK_DECLARE_TABLE(LossTable, loss_table)

// MSE sums are taken per block of this many elements, then over blocks in order: the result
// does not depend on how blocks are spread over threads.
constexpr int64_t kMseBlock = 4096;
// Work (elements) below which a loss runs on the calling thread.
constexpr int64_t kLossSerialBelow = int64_t{1} << 15;

}  // namespace tk
