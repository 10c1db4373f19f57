#include "trainkern/dispatch.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define TK_X86 1
#endif

namespace tk {
namespace {

struct Detected {
  bool runnable[kNumIsa] = {true, false, false, false};
  CpuInfo info;
};

#if defined(TK_X86)
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

Detected detect() {
  Detected d;
  unsigned a, b, c, e;
  if (!__get_cpuid(0, &a, &b, &c, &e)) return d;
  const unsigned max_leaf = a;
  char vendor[13] = {};
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &e, 4);
  std::memcpy(vendor + 8, &c, 4);
  d.info.vendor = vendor;

  unsigned ext = __get_cpuid_max(0x80000000u, nullptr);
  if (ext >= 0x80000004u) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      unsigned r[4];
      __get_cpuid(0x80000002u + i, &r[0], &r[1], &r[2], &r[3]);
      std::memcpy(brand + 16 * i, r, 16);
    }
    std::string s = brand;
    s.erase(0, s.find_first_not_of(' '));
    s.erase(s.find_last_not_of(' ') + 1);
    d.info.brand = s;
  }

  __get_cpuid(1, &a, &b, &c, &e);
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28);
  bool avx2 = false, bmi1 = false, bmi2 = false, f512 = false, dq512 = false, bw512 = false,
       vl512 = false;
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, e);
    bmi1 = b & (1u << 3);
    avx2 = b & (1u << 5);
    bmi2 = b & (1u << 8);
    f512 = b & (1u << 16);
    dq512 = b & (1u << 17);
    bw512 = b & (1u << 30);
    vl512 = b & (1u << 31);
  }
  // The OS must save the wider registers on a context switch, or using them corrupts state.
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;
  const bool lzcnt = [] {
    unsigned r[4] = {};
    return __get_cpuid(0x80000001u, &r[0], &r[1], &r[2], &r[3]) && (r[2] & (1u << 5));
  }();
  auto add = [&](bool on, const char* name) {
    if (on) d.info.features.push_back(name);
  };
  add(avx, "avx");
  add(fma, "fma");
  add(avx2, "avx2");
  add(bmi1, "bmi1");
  add(bmi2, "bmi2");
  add(lzcnt, "lzcnt");
  add(f512, "avx512f");
  add(dq512, "avx512dq");
  add(bw512, "avx512bw");
  add(vl512, "avx512vl");
  add(os_avx, "os_avx");
  add(os_avx512, "os_avx512");
  const bool can_avx2 = avx && fma && avx2 && bmi1 && bmi2 && lzcnt && os_avx;
  d.runnable[static_cast<int>(Isa::avx2)] = can_avx2;
  d.runnable[static_cast<int>(Isa::avx512)] =
      can_avx2 && f512 && dq512 && bw512 && vl512 && os_avx512;
  return d;
}
#elif defined(__aarch64__)
Detected detect() {
  Detected d;
  d.info.vendor = "arm64";
  d.info.features.push_back("neon");  // mandatory on AArch64
  d.runnable[static_cast<int>(Isa::neon)] = true;
  return d;
}
#else
Detected detect() { return Detected{}; }
#endif

const Detected& detected() {
  static const Detected d = detect();
  return d;
}

constexpr Isa kPriority[] = {Isa::avx512, Isa::avx2, Isa::neon, Isa::scalar};

std::atomic<int> g_active{static_cast<int>(Isa::scalar)};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return "scalar";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
    case Isa::neon:
      return "neon";
  }
  return "?";
}

bool isa_from_name(const std::string& name, Isa* out) {
  for (int i = 0; i < kNumIsa; ++i) {
    if (name == isa_name(static_cast<Isa>(i))) {
      *out = static_cast<Isa>(i);
      return true;
    }
  }
  return false;
}

bool isa_compiled(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return true;
    case Isa::avx2:
      return TK_IF_AVX2(true ||) false;
    case Isa::avx512:
      return TK_IF_AVX512(true ||) false;
    case Isa::neon:
      return TK_IF_NEON(true ||) false;
  }
  return false;
}

bool isa_runnable(Isa isa) {
  return isa_compiled(isa) && detected().runnable[static_cast<int>(isa)];
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa isa : kPriority)
    if (isa_runnable(isa)) out.push_back(isa);
  return out;
}

Isa active_isa() { return static_cast<Isa>(g_active.load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  if (!isa_compiled(isa))
    throw std::invalid_argument(std::string("ISA target '") + isa_name(isa) +
                                "' was not compiled into this build of trainkern");
  if (!isa_runnable(isa))
    throw std::invalid_argument(std::string("ISA target '") + isa_name(isa) +
                                "' cannot run on this CPU/OS (missing instruction set or OS "
                                "support)");
  g_active.store(static_cast<int>(isa), std::memory_order_relaxed);
}

void init_dispatch() {
  const char* env = std::getenv("TRAINKERN_ISA");
  if (env == nullptr || *env == '\0') {
    set_active_isa(available_isas().front());
    return;
  }
  Isa isa;
  if (!isa_from_name(env, &isa))
    throw std::invalid_argument(std::string("TRAINKERN_ISA='") + env +
                                "' is not a target name; expected one of: scalar, avx2, "
                                "avx512, neon");
  try {
    set_active_isa(isa);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("TRAINKERN_ISA='") + env + "': " + e.what());
  }
}

const CpuInfo& cpu_info() { return detected().info; }

}  // namespace tk
