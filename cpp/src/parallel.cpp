#include "parallel.h"

#include <pthread.h>

#include <atomic>

namespace tk {
namespace {
std::atomic<int> g_threads{0};

// GNU OpenMP's thread pool does not survive fork(): a child that enters a parallel region
// after the parent used one can hang. A forked child therefore runs every kernel on its
// calling thread, which needs no pool at all.
std::atomic<bool> g_in_forked_child{false};
void mark_forked_child() { g_in_forked_child.store(true, std::memory_order_relaxed); }
const int g_atfork_registered = pthread_atfork(nullptr, nullptr, &mark_forked_child);
}  // namespace

int num_threads() {
  if (g_in_forked_child.load(std::memory_order_relaxed)) return 1;
  const int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
}

void set_num_threads(int n) { g_threads.store(n > 0 ? n : 0, std::memory_order_relaxed); }

}  // namespace tk
