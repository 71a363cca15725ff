// bitlinear: kernel families, CPU feature detection and the BITLINEAR_ISA override.
//
// A kernel family is a set of kernels written for one instruction set. Which family runs is decided once:
//   - Options::isa of a layer, if not Isa::automatic;
//   - otherwise the process default: the family named by the environment variable BITLINEAR_ISA, read once
//     at first use, or, if it is unset or empty, the best family this CPU and OS can run.
// Naming a family the CPU cannot run, or an unknown name, throws std::runtime_error listing what this CPU supports.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config.hpp"

#if BITLINEAR_ARCH_X86_64 && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif
#if BITLINEAR_ARCH_AARCH64 && defined(__linux__)
#include <sys/auxv.h>
#endif

BITLINEAR_NAMESPACE_BEGIN

enum class Isa : std::uint8_t {
  automatic,     // resolve to the process default (BITLINEAR_ISA or the best the CPU runs)
  scalar,        // portable reference loops: the source of truth
  avx2,          // x86: AVX2 + FMA + F16C
  avxvnni,       // x86: AVX2 + AVX-VNNI (VEX vpdpbusd)
  avx512,        // x86: AVX-512 F/BW/VL + VNNI, with OS support for the zmm/opmask state
  neon,          // aarch64: ARMv8.0 Advanced SIMD
  neon_dotprod,  // aarch64: Advanced SIMD + dot product (sdot)
};

inline constexpr Isa all_isas[] = {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512, Isa::neon, Isa::neon_dotprod};

inline constexpr std::string_view isa_name(Isa isa) noexcept {
  switch (isa) {
    case Isa::automatic: return "automatic";
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avxvnni: return "avxvnni";
    case Isa::avx512: return "avx512";
    case Isa::neon: return "neon";
    case Isa::neon_dotprod: return "neon_dotprod";
  }
  return "unknown";
}

// What the CPU and the operating system allow. Each flag is true only if the OS also saves the register
// state the instructions need (x86: XCR0 read with xgetbv).
struct CpuFeatures {
  bool avx2 = false;     // AVX2 + FMA + F16C, OS saves ymm
  bool avxvnni = false;  // avx2 + AVX-VNNI
  bool avx512 = false;   // AVX-512 F/BW/VL + VNNI, OS saves zmm and opmask state
  bool neon = false;     // aarch64 Advanced SIMD
  bool dotprod = false;  // aarch64 SDOT/UDOT
};

namespace detail {

#if BITLINEAR_ARCH_X86_64 && (defined(__GNUC__) || defined(__clang__))
inline std::uint64_t read_xcr0() noexcept {
  std::uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<std::uint64_t>(edx) << 32) | eax;
}

inline CpuFeatures detect_cpu_features() noexcept {
  CpuFeatures f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(0, &a, &b, &c, &d) == 0) return f;
  const unsigned max_leaf = a;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return f;
  const bool fma = (c >> 12) & 1u, osxsave = (c >> 27) & 1u, avx = (c >> 28) & 1u, f16c = (c >> 29) & 1u;
  if (!osxsave || !avx || max_leaf < 7) return f;
  const std::uint64_t xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6u) == 0x6u;     // SSE and AVX state
  const bool os_zmm = (xcr0 & 0xE6u) == 0xE6u;   // plus opmask, ZMM_Hi256, Hi16_ZMM
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned leaf7_max_subleaf = a;
  const bool avx2 = (b >> 5) & 1u, avx512f = (b >> 16) & 1u, avx512bw = (b >> 30) & 1u, avx512vl = (b >> 31) & 1u;
  const bool avx512vnni = (c >> 11) & 1u;
  bool avx_vnni = false;
  if (leaf7_max_subleaf >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    avx_vnni = (a >> 4) & 1u;
  }
  f.avx2 = os_ymm && avx && avx2 && fma && f16c;
  f.avxvnni = f.avx2 && avx_vnni;
  f.avx512 = f.avx2 && os_zmm && avx512f && avx512bw && avx512vl && avx512vnni;
  return f;
}
#elif BITLINEAR_ARCH_AARCH64
inline CpuFeatures detect_cpu_features() noexcept {
  CpuFeatures f;
  f.neon = true;  // Advanced SIMD is mandatory in ARMv8-A
#if defined(__linux__)
  const unsigned long hwcap = getauxval(AT_HWCAP);
  constexpr unsigned long hwcap_asimddp = 1ul << 20;  // HWCAP_ASIMDDP in <asm/hwcap.h>
  f.dotprod = (hwcap & hwcap_asimddp) != 0;
#endif
  return f;
}
#else
inline CpuFeatures detect_cpu_features() noexcept { return {}; }
#endif

}  // namespace detail

// Features of the CPU this process runs on, detected once.
inline const CpuFeatures& cpu_features() noexcept {
  static const CpuFeatures features = detail::detect_cpu_features();
  return features;
}

// True if `isa` has kernels in this build and this CPU and OS can run them.
inline bool cpu_supports(Isa isa) noexcept {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::automatic:
    case Isa::scalar: return true;
    case Isa::avx2: return BITLINEAR_ARCH_X86_64 && f.avx2;
    case Isa::avxvnni: return BITLINEAR_ARCH_X86_64 && f.avxvnni;
    case Isa::avx512: return BITLINEAR_ARCH_X86_64 && f.avx512;
    case Isa::neon: return BITLINEAR_ARCH_AARCH64 && f.neon;
    case Isa::neon_dotprod: return BITLINEAR_ARCH_AARCH64 && f.neon && f.dotprod;
  }
  return false;
}

namespace detail {

// Families that have kernels in this version of the library; a family listed in Isa but not here
// (its kernels not yet written for this architecture) is never chosen automatically and cannot be forced.
inline bool isa_implemented(Isa isa) noexcept;  // defined in detail/dispatch.hpp

inline bool isa_runnable(Isa isa) noexcept { return isa != Isa::automatic && isa_implemented(isa) && cpu_supports(isa); }

inline std::string runnable_isa_list() {
  std::string list;
  for (Isa isa : all_isas) {
    if (!isa_runnable(isa)) continue;
    if (!list.empty()) list += ", ";
    list += isa_name(isa);
  }
  return list;
}

// The fastest runnable family, in order of preference.
inline Isa best_isa() noexcept {
  for (Isa isa : {Isa::avx512, Isa::avxvnni, Isa::avx2, Isa::neon_dotprod, Isa::neon}) {
    if (isa_runnable(isa)) return isa;
  }
  return Isa::scalar;
}

// The family called `name` ("automatic" and "auto" give Isa::automatic); false if there is none.
inline bool find_isa(std::string_view name, Isa& isa) noexcept {
  for (Isa candidate : all_isas) {
    if (isa_name(candidate) == name) {
      isa = candidate;
      return true;
    }
  }
  if (name == "automatic" || name == "auto") {
    isa = Isa::automatic;
    return true;
  }
  return false;
}

inline std::string unknown_isa_message(std::string_view name) {
  return "bitlinear: unknown kernel family \"" + std::string(name) +
         "\"; known families: scalar, avx2, avxvnni, avx512, neon, neon_dotprod, automatic";
}
}  // namespace detail

// Parses a family name as accepted by BITLINEAR_ISA ("scalar", "avx2", ...). Throws std::invalid_argument
// for an unknown name. Does not check that the CPU can run it.
inline Isa parse_isa(std::string_view name) {
  Isa isa = Isa::automatic;
  if (!detail::find_isa(name, isa)) detail::fail_invalid_argument(detail::unknown_isa_message(name));
  return isa;
}

// Resolves a requested family to one that runs here; throws std::runtime_error if the CPU cannot run it.
inline Isa resolve_isa(Isa requested);

namespace detail {
inline Isa default_isa_from_environment() {
  const char* env = std::getenv("BITLINEAR_ISA");
  if (env == nullptr || *env == '\0') return best_isa();
  Isa isa = Isa::automatic;
  if (!find_isa(env, isa)) {
    fail_runtime_error(std::string("bitlinear: BITLINEAR_ISA=\"") + env + "\" is not a kernel family (" +
                       unknown_isa_message(env) + "); this CPU supports: " + runnable_isa_list());
  }
  if (isa == Isa::automatic) return best_isa();
  if (!isa_runnable(isa)) {
    fail_runtime_error(std::string("bitlinear: BITLINEAR_ISA=\"") + env +
                       "\" names a kernel family this CPU cannot run (or this build lacks); this CPU supports: " +
                       runnable_isa_list());
  }
  return isa;
}
}  // namespace detail

// The process default family: BITLINEAR_ISA if set, otherwise the best the CPU runs. Resolved once; throws
// std::runtime_error (on every call) if BITLINEAR_ISA is invalid.
inline Isa default_isa() {
  static const Isa isa = detail::default_isa_from_environment();
  return isa;
}

inline Isa resolve_isa(Isa requested) {
  if (requested == Isa::automatic) return default_isa();
  if (!detail::isa_runnable(requested)) {
    detail::fail_runtime_error("bitlinear: kernel family \"" + std::string(isa_name(requested)) +
                               "\" cannot run on this CPU (or has no kernels in this build); this CPU supports: " +
                               detail::runnable_isa_list());
  }
  return requested;
}

// Name of the family layers built with Options::isa == Isa::automatic use: "avx512", "avx2", "neon_dotprod",
// "neon" or "scalar".
inline std::string_view active_isa() { return isa_name(default_isa()); }

BITLINEAR_NAMESPACE_END

// The kernel tables, and isa_implemented() with them.
#ifndef BITLINEAR_INTERNAL_INCLUDE
#define BITLINEAR_INTERNAL_INCLUDE
#endif
#include "detail/dispatch.hpp"
