// The macOS / iOS detection path of isa.hpp (sysctlbyname("hw.optional.arm.FEAT_DotProd")), run on Linux
// aarch64 under qemu through the BITLINEAR_TEST_SYSCTLBYNAME hook: a fake sysctlbyname answers as macOS would,
// as set by the first argument, and the Linux getauxval path is not compiled in (so under QEMU_CPU=max, whose
// HWCAP reports dotprod, an answer of 0 must still give neon):
//   1        the key is 1 (a 4-byte int, as macOS returns it)     -> dotprod
//   0        the key is 0                                        -> no dotprod
//   int64    the key is 1 as an 8-byte value                     -> dotprod
//   missing  the key does not exist (macOS 11), error ENOENT      -> no dotprod
// Built twice: plain, and with -march=armv8.2-a+dotprod, where the compile-time __ARM_FEATURE_DOTPROD counts as
// dotprod whatever sysctl says (sysctl is then not asked). Checks the key asked for, the features, the automatic family, and (when the
// family has dotprod and QEMU_CPU allows it) that the chosen kernels run and equal scalar.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace {
std::string fake_mode;
std::string asked;
int fake_sysctlbyname(const char* name, void* old_value, std::size_t* old_size, const void*, std::size_t) {
  asked += std::string(name) + ";";
  if (std::strcmp(name, "hw.optional.arm.FEAT_DotProd") != 0 || fake_mode == "missing") {
    errno = ENOENT;
    return -1;
  }
  if (fake_mode == "int64") {
    const std::int64_t value = 1;
    if (*old_size < sizeof value) return errno = ENOMEM, -1;
    std::memcpy(old_value, &value, sizeof value);
    *old_size = sizeof value;
    return 0;
  }
  const std::int32_t value = fake_mode == "1" ? 1 : 0;
  if (*old_size < sizeof value) return errno = ENOMEM, -1;
  std::memcpy(old_value, &value, sizeof value);
  *old_size = sizeof value;
  return 0;
}
}  // namespace

#define BITLINEAR_TEST_SYSCTLBYNAME fake_sysctlbyname
#include <bitlinear/bitlinear.hpp>

#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::printf("usage: apple_detection_check 1|0|int64|missing\n");
    return 2;
  }
  fake_mode = argv[1];
#if defined(__ARM_FEATURE_DOTPROD)
  const bool compile_time = true;
#else
  const bool compile_time = false;
#endif
  const bool want_dotprod = compile_time || fake_mode == "1" || fake_mode == "int64";
  const bitlinear::CpuFeatures& f = bitlinear::cpu_features();
  const std::string automatic(bitlinear::active_isa());
  std::printf("mode %s, compile-time dotprod %d: asked \"%s\", neon %d, dotprod %d, automatic %s\n", fake_mode.c_str(),
              compile_time, asked.c_str(), f.neon, f.dotprod, automatic.c_str());
  int failures = 0;
  // With a compile-time dotprod there is nothing to ask; otherwise exactly the one documented key.
  const std::string want_asked = compile_time ? "" : "hw.optional.arm.FEAT_DotProd;";
  if (asked != want_asked) ++failures, std::printf("FAIL: wrong sysctl keys\n");
  if (!f.neon || f.dotprod != want_dotprod) ++failures, std::printf("FAIL: wrong features\n");
  if (automatic != (want_dotprod ? "neon_dotprod" : "neon")) ++failures, std::printf("FAIL: wrong family\n");
  // Run the chosen kernels unless the emulated CPU lacks an instruction the family needs.
  const char* qemu_cpu = std::getenv("QEMU_CPU");
  const bool cpu_lacks_dotprod = qemu_cpu != nullptr && std::string(qemu_cpu) == "cortex-a53";
  if (!(want_dotprod && cpu_lacks_dotprod)) {
    const std::size_t out = 33, in = 300, batch = 5;
    std::vector<float> w(out * in), x(batch * in), y(batch * out), y_scalar(batch * out);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((i * 7919) % 201) / 100.0f - 1.0f;
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 104729) % 301) / 50.0f - 3.0f;
    bitlinear::Options scalar;
    scalar.isa = bitlinear::Isa::scalar;
    bitlinear::TernaryLinear::from_float(w.data(), out, in).forward(x.data(), batch, y.data());
    bitlinear::TernaryLinear::from_float(w.data(), out, in, nullptr, scalar).forward(x.data(), batch, y_scalar.data());
    if (std::memcmp(y.data(), y_scalar.data(), y.size() * sizeof(float)) != 0) {
      ++failures;
      std::printf("FAIL: %s differs from scalar\n", automatic.c_str());
    }
  }
  return failures == 0 ? 0 : 1;
}
