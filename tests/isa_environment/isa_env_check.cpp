// Checks how BITLINEAR_ISA (read from this process's environment, set by ctest) is honoured:
//   unset or empty   -> active_isa() is the best runnable family (avx512_vbmi > avx512 > avxvnni > avx2 > neon_dotprod > neon >
//                       scalar),
//                       and equals BITLINEAR_EXPECT_AUTOMATIC if that is set (CI legs pin the expected family);
//   a runnable name  -> active_isa() is that name and layers built with Isa::automatic run it, bit-identical
//                       to the scalar family;
//   anything else    -> every use throws std::runtime_error saying what the CPU supports.
// Built with plain flags (no -m), so it is also the "one binary" check: it reports what it picked.
#include <bitlinear/bitlinear.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
    ++failures;
  }
}

bool forward_matches_scalar() {
  const std::size_t out = 33, in = 300, batch = 5;
  std::vector<float> w(out * in), x(batch * in), y(batch * out), y_scalar(batch * out);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((i * 7919) % 201) / 100.0f - 1.0f;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 104729) % 301) / 50.0f - 3.0f;
  bitlinear::Options scalar;
  scalar.isa = bitlinear::Isa::scalar;
  const auto layer = bitlinear::TernaryLinear::from_float(w.data(), out, in);
  const auto reference = bitlinear::TernaryLinear::from_float(w.data(), out, in, nullptr, scalar);
  layer.forward(x.data(), batch, y.data());
  reference.forward(x.data(), batch, y_scalar.data());
  return std::memcmp(y.data(), y_scalar.data(), y.size() * sizeof(float)) == 0 &&
         layer.isa() == bitlinear::default_isa();
}

}  // namespace

int main() {
  const char* env = std::getenv("BITLINEAR_ISA");
  const std::string requested = env ? env : "";
  bool known_runnable = false;
  for (bitlinear::Isa isa : bitlinear::all_isas) {
    known_runnable = known_runnable || (bitlinear::isa_name(isa) == requested && bitlinear::detail::isa_runnable(isa));
  }
  if (requested.empty()) {
    const std::string active(bitlinear::active_isa());
    std::string best = "scalar";
    for (bitlinear::Isa isa : {bitlinear::Isa::avx512_vbmi, bitlinear::Isa::avx512, bitlinear::Isa::avxvnni, bitlinear::Isa::avx2, bitlinear::Isa::neon_dotprod,
                               bitlinear::Isa::neon}) {
      if (bitlinear::detail::isa_runnable(isa)) {
        best = std::string(bitlinear::isa_name(isa));
        break;
      }
    }
    check(active == best, "automatic choice is " + active + ", best runnable is " + best);
    if (const char* expect = std::getenv("BITLINEAR_EXPECT_AUTOMATIC")) {
      check(active == expect, "automatic choice is " + active + ", CI expects " + expect);
    }
    check(forward_matches_scalar(), "automatic family differs from scalar");
    std::printf("automatic kernel family: %s\n", active.c_str());
  } else if (known_runnable) {
    check(bitlinear::active_isa() == requested, "BITLINEAR_ISA=" + requested + " but active_isa() is " +
                                                    std::string(bitlinear::active_isa()));
    check(forward_matches_scalar(), "forced family " + requested + " differs from scalar or did not run");
    std::printf("forced kernel family: %s\n", requested.c_str());
  } else {
    for (int attempt = 0; attempt < 2; ++attempt) {  // the error repeats: nothing is cached on failure
      try {
        (void)bitlinear::active_isa();
        check(false, "BITLINEAR_ISA=" + requested + " was accepted");
      } catch (const std::runtime_error& e) {
        const std::string message = e.what();
        check(message.find("BITLINEAR_ISA=\"" + requested + "\"") != std::string::npos, "message names the value: " + message);
        check(message.find("this CPU supports: scalar") != std::string::npos, "message lists support: " + message);
        if (attempt == 0) std::printf("rejected as expected: %s\n", message.c_str());
      }
    }
  }
  return failures == 0 ? 0 : 1;
}
