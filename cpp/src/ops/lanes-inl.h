// The loop every elementwise kernel runs: whole vectors in the middle, masked partial
// vectors at the ends. The head is peeled so that the middle's accesses to `anchor` are
// cache-line aligned: arrays from the same allocator share their misalignment (NumPy's
// large arrays sit 16 bytes past a line), and a vector load that straddles two lines
// costs two. Included by the target TUs after the SIMD header.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tk {
namespace TK_NS {

// Loads and stores at lane i of a whole (Full) or partial (n lanes) vector.
template <class T, bool Full>
struct LaneIo {
  using S = Simd<T>;
  int64_t i;
  size_t n;
  typename S::V load(const T* p) const { return Full ? S::loadu(p + i) : S::load_partial(p + i, n); }
  void store(T* p, typename S::V x) const {
    if (Full)
      S::storeu(p + i, x);
    else
      S::store_partial(p + i, x, n);
  }
};

// Calls full(i) for whole vectors at i and part(i, n) for n < N lanes at i, over [begin, end).
template <class T, class Full, class Part>
inline void for_each_lane(const T* anchor, int64_t begin, int64_t end, Full full, Part part) {
  constexpr int64_t N = static_cast<int64_t>(Simd<T>::N);
  int64_t i = begin;
  if (N > 1) {
    const auto addr = reinterpret_cast<uintptr_t>(anchor + begin);
    int64_t head = addr % sizeof(T) ? 0 : static_cast<int64_t>((64 - addr % 64) % 64 / sizeof(T));
    head = head % N;
    if (head > end - begin) head = end - begin;
    if (head > 0) {
      part(i, static_cast<size_t>(head));
      i += head;
    }
  }
  for (; i + N <= end; i += N) full(i);
  if (i < end) part(i, static_cast<size_t>(end - i));
}

}  // namespace TK_NS
}  // namespace tk
