// bitlinear internal: every float operation of the library runs in the default floating-point environment.
//
// The float32 semantics (DESIGN §1) assume IEEE round-to-nearest-even, no flush-to-zero and no
// denormals-are-zero. A caller may have changed any of these (fesetround, _MM_SET_FLUSH_ZERO_MODE, a program
// linked with -ffast-math, whose startup code sets FTZ and DAZ), and ThreadPool workers keep whatever
// environment they were created with. FpEnvironmentGuard makes a scope run in the default environment:
//   x86-64:  MXCSR control bits = 0x1F80 (round to nearest even, FTZ and DAZ off, all exceptions masked);
//   aarch64: FPCR rounding mode, FZ, DN, AHP, FIZ/AH/NEP and trap enables cleared (round to nearest even, IEEE
//            NaN propagation, denormals kept, no traps);
//   others:  the C <cfenv> rounding mode is set to FE_TONEAREST (flush modes are not reachable portably).
// Cost: reading the control register (stmxcsr / mrs fpcr, a few cycles) when the environment already is the
// default, which is the common case; otherwise one write on entry and one on exit (ldmxcsr / msr fpcr, tens of
// cycles), once per call or per ThreadPool task, never per row or per element.
// On exit the caller's environment is restored exactly; x86-64 keeps the exception flags raised inside.
// Every public entry point that does float arithmetic (layer construction, quantization, the matmul epilogue,
// and each ThreadPool task of them) holds a guard, so results are bit-identical in any environment and on any thread.
// A float value computed in the scope and used after it (a returned scale) must pass through opaque()
// (exact_float.hpp) inside the scope: compilers treat register arithmetic as independent of the control register
// and may sink it past the guard's restoring write (Clang 14 did, for the binary weight scale).
#pragma once
#include "internal_only.hpp"

#include "../config.hpp"

#if BITLINEAR_ARCH_X86_64
#include <xmmintrin.h>
#elif BITLINEAR_ARCH_AARCH64 && (defined(__GNUC__) || defined(__clang__))
#include <cstdint>
#else
#include <cfenv>
#endif

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// Keeps the compiler from moving memory accesses (and the float work that depends on them) across a change
// of the environment.
inline void fp_environment_fence() noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __asm__ __volatile__("" ::: "memory");
#endif
}

class FpEnvironmentGuard {
 public:
#if BITLINEAR_ARCH_X86_64
  static constexpr unsigned default_mxcsr = 0x1F80u;  // all exceptions masked, round to nearest, no FTZ/DAZ
  static constexpr unsigned status_flags = 0x3Fu;     // sticky exception flags (IE DE ZE OE UE PE)

  FpEnvironmentGuard() noexcept : saved_(_mm_getcsr()) {
    if ((saved_ & ~status_flags) != default_mxcsr) {
      _mm_setcsr(default_mxcsr | (saved_ & status_flags));
      changed_ = true;
    }
    fp_environment_fence();
  }
  ~FpEnvironmentGuard() {
    fp_environment_fence();
    if (changed_) _mm_setcsr(saved_ | (_mm_getcsr() & status_flags));
  }

 private:
  unsigned saved_;
  bool changed_ = false;

#elif BITLINEAR_ARCH_AARCH64 && (defined(__GNUC__) || defined(__clang__))
  // FPCR bits that change results or trap: FIZ, AH, NEP (0-2), IOE..IXE (8-12), IDE (15), RMode (22-23), FZ (24),
  // DN (25), AHP (26). Zero in all of them is the IEEE default.
  static constexpr std::uint64_t result_bits = 0x7u | (0x1Fu << 8) | (1u << 15) | (0x1Fu << 22);

  FpEnvironmentGuard() noexcept {
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(saved_));
    if ((saved_ & result_bits) != 0) {
      const std::uint64_t wanted = saved_ & ~result_bits;
      __asm__ __volatile__("msr fpcr, %0" : : "r"(wanted) : "memory");
      changed_ = true;
    }
    fp_environment_fence();
  }
  ~FpEnvironmentGuard() {
    fp_environment_fence();
    if (changed_) __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_) : "memory");
  }

 private:
  std::uint64_t saved_ = 0;
  bool changed_ = false;

#else
  FpEnvironmentGuard() noexcept : saved_(std::fegetround()) {
    if (saved_ != FE_TONEAREST) std::fesetround(FE_TONEAREST);
    fp_environment_fence();
  }
  ~FpEnvironmentGuard() {
    fp_environment_fence();
    if (saved_ != FE_TONEAREST) std::fesetround(saved_);
  }

 private:
  int saved_;
#endif

 public:
  FpEnvironmentGuard(const FpEnvironmentGuard&) = delete;
  FpEnvironmentGuard& operator=(const FpEnvironmentGuard&) = delete;
};

}  // namespace detail
BITLINEAR_NAMESPACE_END
