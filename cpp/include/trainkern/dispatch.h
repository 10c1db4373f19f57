// Runtime selection of the ISA target. Every kernel family keeps one table of function
// pointers per compiled target; TK_ACTIVE(table) returns the active target's table.
#pragma once
#include <string>
#include <vector>

namespace tk {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2, neon = 3 };
constexpr int kNumIsa = 4;

const char* isa_name(Isa isa);
// False when `name` is not a target name at all.
bool isa_from_name(const std::string& name, Isa* out);
// Built into this extension.
bool isa_compiled(Isa isa);
// Built, and this CPU and OS can run it (CPUID and XGETBV).
bool isa_runnable(Isa isa);
// Runnable targets, best first.
std::vector<Isa> available_isas();

Isa active_isa();
// Throws std::invalid_argument (with a message for the user) when `isa` cannot run here.
void set_active_isa(Isa isa);
// Reads TRAINKERN_ISA (the one place the library reads it) and selects the target.
// Throws std::invalid_argument for an unknown or unrunnable name.
void init_dispatch();

struct CpuInfo {
  std::string vendor;
  std::string brand;
  std::vector<std::string> features;  // the ones dispatch looks at, as detected
};
const CpuInfo& cpu_info();

namespace detail {
template <class Table>
const Table& pick(const Table* const (&tables)[kNumIsa]) {
  return *tables[static_cast<int>(active_isa())];
}
}  // namespace detail

}  // namespace tk

// The list of targets lives here and in CMakeLists.txt only.
#if defined(TRAINKERN_HAVE_AVX2)
#define TK_IF_AVX2(...) __VA_ARGS__
#define TK_PTR_AVX2(name) &::tk::avx2::name
#else
#define TK_IF_AVX2(...)
#define TK_PTR_AVX2(name) nullptr
#endif
#if defined(TRAINKERN_HAVE_AVX512)
#define TK_IF_AVX512(...) __VA_ARGS__
#define TK_PTR_AVX512(name) &::tk::avx512::name
#else
#define TK_IF_AVX512(...)
#define TK_PTR_AVX512(name) nullptr
#endif
#if defined(TRAINKERN_HAVE_NEON)
#define TK_IF_NEON(...) __VA_ARGS__
#define TK_PTR_NEON(name) &::tk::neon::name
#else
#define TK_IF_NEON(...)
#define TK_PTR_NEON(name) nullptr
#endif

// Declares `extern const Type name;` in the namespace of every compiled target.
#define TK_DECLARE_TABLE(Type, name)                  \
  namespace scalar {                                  \
  extern const Type name;                             \
  }                                                   \
  TK_IF_AVX2(namespace avx2 { extern const Type name; })     \
  TK_IF_AVX512(namespace avx512 { extern const Type name; }) \
  TK_IF_NEON(namespace neon { extern const Type name; })

// The active target's table `name` (declared with TK_DECLARE_TABLE).
#define TK_ACTIVE(name)                                                               \
  (::tk::detail::pick<std::remove_cv_t<decltype(::tk::scalar::name)>>(                \
      {&::tk::scalar::name, TK_PTR_AVX2(name), TK_PTR_AVX512(name), TK_PTR_NEON(name)}))
