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
#include "error.hpp"

// How the CPU is asked, per platform (each path is described where it is used below):
//   x86-64: cpuid + xgetbv. GCC, Clang, MinGW: <cpuid.h> and inline asm. MSVC: __cpuidex (<intrin.h>) and
//           _xgetbv. clang-cl: __cpuidex (its <cpuid.h> clashes with <intrin.h>) and inline asm.
//   aarch64: Linux and Android getauxval(AT_HWCAP); macOS/iOS sysctlbyname("hw.optional.arm.FEAT_DotProd");
//           Windows IsProcessorFeaturePresent(PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE). Everywhere, a compiler
//           told that every target CPU has dotprod (__ARM_FEATURE_DOTPROD, e.g. Apple clang's default CPU for
//           arm64 macOS) counts as dotprod present.
// Test hooks (tests/platforms): BITLINEAR_TEST_MSVC_CPUID takes the MSVC intrinsics path with GCC/Clang;
// BITLINEAR_TEST_SYSCTLBYNAME=fn takes the macOS path on any aarch64 OS, calling fn instead of sysctlbyname.
#if BITLINEAR_ARCH_X86_64
#if (defined(_MSC_VER) && !defined(__clang__)) || defined(BITLINEAR_TEST_MSVC_CPUID)
#define BITLINEAR_CPUID_INTRINSICS 1
#define BITLINEAR_XGETBV_INTRINSIC 1
#elif defined(_MSC_VER)
#define BITLINEAR_CPUID_INTRINSICS 1  // clang-cl
#define BITLINEAR_XGETBV_INTRINSIC 0
#else
#define BITLINEAR_CPUID_INTRINSICS 0
#define BITLINEAR_XGETBV_INTRINSIC 0
#endif
#if BITLINEAR_CPUID_INTRINSICS && defined(_MSC_VER)
#include <intrin.h>
#else
#include <cpuid.h>  // GCC >= 11 also declares __cpuidex here (the test hook's path)
#endif
#if BITLINEAR_XGETBV_INTRINSIC
#include <immintrin.h>
#endif
#endif  // BITLINEAR_ARCH_X86_64

#if BITLINEAR_ARCH_AARCH64
#if defined(BITLINEAR_TEST_SYSCTLBYNAME) || defined(__APPLE__)
#define BITLINEAR_DETECT_SYSCTL 1
#if defined(__APPLE__)
#include <sys/sysctl.h>
#include <sys/types.h>
#endif
#elif defined(__linux__)
#define BITLINEAR_DETECT_AUXV 1
#include <sys/auxv.h>
#endif
#endif  // BITLINEAR_ARCH_AARCH64

#if defined(_WIN32)
// From <windows.h> (processthreadsapi.h), declared here with the same types (BOOL = int, DWORD = unsigned long)
// so that bitlinear does not pull <windows.h> and its min/max macros into every user's translation unit.
extern "C" __declspec(dllimport) int __stdcall IsProcessorFeaturePresent(unsigned long processor_feature);
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
  avx512_vbmi,   // x86: avx512 + AVX-512 VBMI (vpermb: the 1.6-bit format's decode); BITLINEAR_ISA=avx512 turns it off
};

inline constexpr Isa all_isas[] = {Isa::scalar,      Isa::avx2, Isa::avxvnni,    Isa::avx512,
                                   Isa::avx512_vbmi, Isa::neon, Isa::neon_dotprod};

inline constexpr std::string_view isa_name(Isa isa) noexcept {
  switch (isa) {
    case Isa::automatic: return "automatic";
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avxvnni: return "avxvnni";
    case Isa::avx512: return "avx512";
    case Isa::avx512_vbmi: return "avx512_vbmi";
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
  bool avx512vbmi = false;  // avx512 + AVX-512 VBMI
  bool neon = false;     // aarch64 Advanced SIMD
  bool dotprod = false;  // aarch64 SDOT/UDOT
};

namespace detail {

// The cpuid leaves and XCR0 bits that decide the x86 families. Zero for what was not read.
struct X86CpuidLeaves {
  unsigned max_leaf = 0;       // leaf 0 eax
  unsigned leaf1_ecx = 0;      // FMA (12), OSXSAVE (27), AVX (28), F16C (29)
  unsigned leaf7_eax = 0;      // highest subleaf of leaf 7
  unsigned leaf7_ebx = 0;      // AVX2 (5), AVX512F (16), AVX512BW (30), AVX512VL (31)
  unsigned leaf7_ecx = 0;      // AVX512_VBMI (1), AVX512_VNNI (11)
  unsigned leaf7_1_eax = 0;    // AVX-VNNI (4)
  std::uint64_t xcr0 = 0;      // read only when OSXSAVE says the OS enabled xgetbv
};

// The families those bits allow: each one needs its instructions and the OS saving its registers (XCR0).
inline CpuFeatures decode_x86_features(const X86CpuidLeaves& r) noexcept {
  const auto bit = [](unsigned word, int n) { return ((word >> n) & 1u) != 0; };
  CpuFeatures f;
  const bool fma = bit(r.leaf1_ecx, 12), osxsave = bit(r.leaf1_ecx, 27), avx = bit(r.leaf1_ecx, 28),
             f16c = bit(r.leaf1_ecx, 29);
  if (!osxsave || !avx || r.max_leaf < 7) return f;
  const bool os_ymm = (r.xcr0 & 0x6u) == 0x6u;    // SSE and AVX state
  const bool os_zmm = (r.xcr0 & 0xE6u) == 0xE6u;  // plus opmask, ZMM_Hi256, Hi16_ZMM
  const bool avx2 = bit(r.leaf7_ebx, 5), avx512f = bit(r.leaf7_ebx, 16), avx512bw = bit(r.leaf7_ebx, 30),
             avx512vl = bit(r.leaf7_ebx, 31), avx512vnni = bit(r.leaf7_ecx, 11);
  const bool avx_vnni = r.leaf7_eax >= 1 && bit(r.leaf7_1_eax, 4);
  f.avx2 = os_ymm && avx && avx2 && fma && f16c;
  f.avxvnni = f.avx2 && avx_vnni;
  f.avx512 = f.avx2 && os_zmm && avx512f && avx512bw && avx512vl && avx512vnni;
  f.avx512vbmi = f.avx512 && bit(r.leaf7_ecx, 1);
  return f;
}

#if BITLINEAR_ARCH_X86_64
// regs = eax, ebx, ecx, edx of cpuid(leaf, subleaf).
inline void cpuid(unsigned leaf, unsigned subleaf, unsigned regs[4]) noexcept {
#if BITLINEAR_CPUID_INTRINSICS
  int r[4] = {0, 0, 0, 0};
  __cpuidex(r, static_cast<int>(leaf), static_cast<int>(subleaf));
  for (int i = 0; i < 4; ++i) regs[i] = static_cast<unsigned>(r[i]);
#else
  __cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
#endif
}

// XCR0, the register-state components the OS saves. Only valid when cpuid reports OSXSAVE.
BITLINEAR_TARGET("xsave") inline std::uint64_t read_xcr0() noexcept {
#if BITLINEAR_XGETBV_INTRINSIC
  return static_cast<std::uint64_t>(_xgetbv(0));
#else
  std::uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<std::uint64_t>(edx) << 32) | eax;
#endif
}

inline X86CpuidLeaves read_x86_cpuid() noexcept {
  X86CpuidLeaves r;
  unsigned regs[4];
  cpuid(0, 0, regs);
  r.max_leaf = regs[0];
  if (r.max_leaf < 1) return r;
  cpuid(1, 0, regs);
  r.leaf1_ecx = regs[2];
  if (((r.leaf1_ecx >> 27) & 1u) != 0) r.xcr0 = read_xcr0();
  if (r.max_leaf < 7) return r;
  cpuid(7, 0, regs);
  r.leaf7_eax = regs[0];
  r.leaf7_ebx = regs[1];
  r.leaf7_ecx = regs[2];
  if (r.leaf7_eax >= 1) {
    cpuid(7, 1, regs);
    r.leaf7_1_eax = regs[0];
  }
  return r;
}

inline CpuFeatures detect_cpu_features() noexcept { return decode_x86_features(read_x86_cpuid()); }

// Vendor and family of the CPU (cpuid leaves 0 and 1), for performance tuning only: no result depends on them.
struct X86CpuModel {
  bool amd = false;     // "AuthenticAMD"
  unsigned family = 0;  // display family: base family, plus the extended family when the base is 0xF
};

inline X86CpuModel read_x86_cpu_model() noexcept {
  X86CpuModel m;
  unsigned regs[4];
  cpuid(0, 0, regs);
  // The vendor string is ebx, edx, ecx: "Auth" "enti" "cAMD".
  m.amd = regs[1] == 0x68747541u && regs[3] == 0x69746E65u && regs[2] == 0x444D4163u;
  if (regs[0] < 1) return m;
  cpuid(1, 0, regs);
  const unsigned base = (regs[0] >> 8) & 0xFu;
  m.family = base == 0xFu ? base + ((regs[0] >> 20) & 0xFFu) : base;
  return m;
}

#elif BITLINEAR_ARCH_AARCH64

#if defined(BITLINEAR_DETECT_SYSCTL)
// A hw.optional.* flag of macOS/iOS: true if the key exists and is nonzero. Apple documents these keys as
// integers; an 8-byte buffer also takes a 64-bit value, and a missing key (older systems) reads as absent.
inline bool sysctl_flag(const char* name) noexcept {
  std::uint64_t value = 0;
  std::size_t size = sizeof value;
#if defined(BITLINEAR_TEST_SYSCTLBYNAME)
  if (BITLINEAR_TEST_SYSCTLBYNAME(name, &value, &size, nullptr, 0) != 0) return false;
#else
  if (::sysctlbyname(name, &value, &size, nullptr, 0) != 0) return false;
#endif
  return (size == 4 || size == 8) && value != 0;  // little endian: a 4-byte value sits in the low bytes
}
#endif

inline CpuFeatures detect_cpu_features() noexcept {
  CpuFeatures f;
  f.neon = true;  // Advanced SIMD is mandatory in ARMv8-A
#if defined(__ARM_FEATURE_DOTPROD)
  f.dotprod = true;  // the compiler may already emit SDOT anywhere: every CPU this build runs on has it
#endif
#if defined(BITLINEAR_DETECT_SYSCTL)
  // macOS 12+ / iOS 15+; every Apple Silicon Mac has it (older systems lack the key: compile-time flag only)
  f.dotprod = f.dotprod || sysctl_flag("hw.optional.arm.FEAT_DotProd");
#elif defined(BITLINEAR_DETECT_AUXV)
  constexpr unsigned long hwcap_asimddp = 1ul << 20;  // HWCAP_ASIMDDP in <asm/hwcap.h>
  f.dotprod = f.dotprod || (getauxval(AT_HWCAP) & hwcap_asimddp) != 0;
#elif defined(_WIN32)
  constexpr unsigned long pf_arm_v82_dp_instructions_available = 43;  // winnt.h
  f.dotprod = f.dotprod || ::IsProcessorFeaturePresent(pf_arm_v82_dp_instructions_available) != 0;
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
    case Isa::avx512_vbmi: return BITLINEAR_ARCH_X86_64 && f.avx512vbmi;
    case Isa::neon: return BITLINEAR_ARCH_AARCH64 && f.neon;
    case Isa::neon_dotprod: return BITLINEAR_ARCH_AARCH64 && f.neon && f.dotprod;
  }
  return false;
}

namespace detail {

// Families that have kernels in this version of the library; a family listed in Isa but not here
// (its kernels not yet written for this architecture) is never chosen automatically and cannot be forced.
inline bool isa_implemented(Isa isa) noexcept {
  switch (isa) {
    case Isa::scalar: return true;
#if BITLINEAR_ARCH_X86_64
    case Isa::avx2:
    case Isa::avxvnni:
    case Isa::avx512:
    case Isa::avx512_vbmi: return true;
#endif
#if BITLINEAR_ARCH_AARCH64
    case Isa::neon:
    case Isa::neon_dotprod: return true;
#endif
    default: return false;
  }
}

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
  for (Isa isa : {Isa::avx512_vbmi, Isa::avx512, Isa::avxvnni, Isa::avx2, Isa::neon_dotprod, Isa::neon}) {
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
         "\"; known families: scalar, avx2, avxvnni, avx512, avx512_vbmi, neon, neon_dotprod, automatic";
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

// Name of the family layers built with Options::isa == Isa::automatic use: "avx512_vbmi", "avx512", "avxvnni",
// "avx2", "neon_dotprod", "neon" or "scalar".
inline std::string_view active_isa() { return isa_name(default_isa()); }

BITLINEAR_NAMESPACE_END

