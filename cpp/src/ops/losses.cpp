// ISA-agnostic entry points of the loss family: run the active target, then reduce the
// per-row (per-block) partial results in a fixed order, so the result does not depend on the
// thread count.
#include "ops/losses.h"

#include <memory>
#include <vector>

#include "trainkern/kernels.h"

namespace tk {
namespace {

template <class T>
const LossTableT<T>& losses();
template <>
const LossTableT<float>& losses<float>() {
  return TK_ACTIVE(loss_table).f32;
}
template <>
const LossTableT<double>& losses<double>() {
  return TK_ACTIVE(loss_table).f64;
}

template <class T>
double cross_entropy_impl(const T* logits, const int64_t* labels, const T* probs,
                          int64_t n_rows, int64_t n_cls, T* row_loss, T* grad,
                          const CrossEntropyOptions& o) {
  // every row is written by the kernel: no zeroing
  const std::unique_ptr<double[]> rows(new double[static_cast<size_t>(n_rows)]);
  losses<T>().cross_entropy(logits, labels, probs, n_rows, n_cls, rows.get(), grad, o);
  if (row_loss != nullptr)
    for (int64_t r = 0; r < n_rows; ++r) row_loss[r] = static_cast<T>(rows[static_cast<size_t>(r)]);
  if (o.reduction == Reduction::none) return 0.0;
  // Four interleaved sums, then a fixed pairing: the same order for any thread count, without
  // one chain of dependent additions (a microsecond at 1024 rows).
  double acc[4] = {0.0, 0.0, 0.0, 0.0};
  int64_t r = 0;
  for (; r + 4 <= n_rows; r += 4)
    for (int k = 0; k < 4; ++k) acc[k] += rows[static_cast<size_t>(r + k)];
  for (int k = 0; r < n_rows; ++r, ++k) acc[k] += rows[static_cast<size_t>(r)];
  const double total = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  if (o.reduction == Reduction::sum) return total;
  const int64_t count = probs != nullptr ? n_rows : o.count;
  return total / static_cast<double>(count);
}

template <class T>
double mse_impl(const T* pred, const T* target, int64_t n, Reduction r, T* elem_loss, T* grad) {
  std::vector<double> partial(static_cast<size_t>((n + kMseBlock - 1) / kMseBlock));
  losses<T>().mse(pred, target, n, r, partial.data(), elem_loss, grad);
  if (r == Reduction::none) return 0.0;
  double total = 0.0;
  for (double p : partial) total += p;
  return r == Reduction::sum ? total : total / static_cast<double>(n);
}

}  // namespace

double softmax_cross_entropy(const float* logits, const int64_t* labels, const float* probs,
                             int64_t n_rows, int64_t n_cls, float* row_loss, float* grad,
                             const CrossEntropyOptions& o) {
  return cross_entropy_impl(logits, labels, probs, n_rows, n_cls, row_loss, grad, o);
}

double softmax_cross_entropy(const double* logits, const int64_t* labels, const double* probs,
                             int64_t n_rows, int64_t n_cls, double* row_loss, double* grad,
                             const CrossEntropyOptions& o) {
  return cross_entropy_impl(logits, labels, probs, n_rows, n_cls, row_loss, grad, o);
}

int64_t check_class_labels(const int64_t* labels, int64_t n, int64_t n_cls,
                           int64_t ignore_index, int64_t* count) {
  return TK_ACTIVE(loss_table).check_labels(labels, n, n_cls, ignore_index, count);
}

double mse_loss(const float* pred, const float* target, int64_t n, Reduction r,
                float* elem_loss, float* grad) {
  return mse_impl(pred, target, n, r, elem_loss, grad);
}

double mse_loss(const double* pred, const double* target, int64_t n, Reduction r,
                double* elem_loss, double* grad) {
  return mse_impl(pred, target, n, r, elem_loss, grad);
}

}  // namespace tk
