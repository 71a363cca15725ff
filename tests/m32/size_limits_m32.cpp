// A 32-bit size_t build (g++ -m32 -msse2 -mfpmath=sse, run by .ci/steps/60-m32.sh): limits that are properties of
// the format (2^40 weights) are compared in 64-bit arithmetic, so normal layers are accepted; sizes this address
// space cannot hold are clear errors, never wrapped products. Standalone (no GoogleTest for -m32 on Debian).
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/io/serialize.hpp>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

static_assert(sizeof(std::size_t) == 4, "this test is for 32-bit size_t builds");

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what);
    ++failures;
  }
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

}  // namespace

int main() {
  constexpr std::size_t huge = std::numeric_limits<std::size_t>::max();
  // A normal layer: 1x1 and 300x1000 (rejected by the old (size_t{1} << 40) limit, which is 0 here).
  for (std::size_t out : {std::size_t{1}, std::size_t{300}}) {
    const std::size_t in = out == 1 ? 1 : 1000;
    std::vector<float> w(out * in), x(2 * in), y(2 * out), y_ref(2 * out);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(static_cast<int>(i % 7) - 3) * 0.25f;
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i % 11) - 5) * 0.5f;
    bitlinear::Options scalar;
    scalar.isa = bitlinear::Isa::scalar;
    const auto layer = bitlinear::TernaryLinear::from_float(w.data(), out, in);
    const auto reference = bitlinear::TernaryLinear::from_float(w.data(), out, in, nullptr, scalar);
    layer.forward(x.data(), 2, y.data());
    reference.forward(x.data(), 2, y_ref.data());
    check(y == y_ref, "a normal layer builds and runs (automatic family equals scalar)");
    const auto bytes = bitlinear::save_to_bytes(layer);
    check(bitlinear::load<bitlinear::Ternary>(bytes.data(), bytes.size()).out_features() == out, "save and load");
  }
  std::printf("automatic family: %s\n", std::string(bitlinear::active_isa()).c_str());

  std::vector<float> w(16, 0.5f), x(16, 1.0f), y(16);
  const auto layer = bitlinear::TernaryLinear::from_float(w.data(), 3, 5);
  // batch * 512 wraps a 32-bit size_t.
  check(contains(error_of([&] { (void)layer.workspace_size(std::size_t{1} << 23); }), "does not fit in memory"),
        "workspace_size(2^23) throws");
  check(contains(error_of([&] { (void)bitlinear::activation_workspace_size(huge, 5); }), "does not fit in memory"),
        "activation_workspace_size(SIZE_MAX) throws");
  check(contains(error_of([&] { layer.forward(x.data(), std::size_t{1} << 23, y.data()); }), "does not fit in memory"),
        "forward with batch 2^23 throws");
  check(contains(error_of([&] { layer.forward(x.data(), 2, huge / 2, y.data(), 3); }), "input x of 2 rows"),
        "a wrapping x stride throws");
  check(contains(error_of([&] { layer.forward(x.data(), 2, 5, y.data(), huge / 4); }), "output y of 2 rows"),
        "a wrapping y stride throws");
  // 2^20 x 2^20 is within 2^40 but not within a 32-bit address space; 2^21 x 2^20 is beyond 2^40.
  check(contains(error_of([&] { bitlinear::TernaryLinear::from_float(w.data(), std::size_t{1} << 20, std::size_t{1} << 20); }),
                 "does not fit in memory"),
        "a layer larger than the address space throws");
  check(contains(error_of([&] { bitlinear::TernaryLinear::from_float(w.data(), huge, std::size_t{1} << 20); }),
                 "exceeds the limit of 2^40 weights"),
        "a layer beyond 2^40 weights throws");
  // A saved header declaring a layer the address space cannot hold (1 x 2^20 per row, 2^20 rows).
  {
    auto bytes = bitlinear::save_to_bytes(layer);
    const unsigned long long out = 1ull << 20, in = 1ull << 20;
    for (int i = 0; i < 8; ++i) bytes[16 + i] = static_cast<unsigned char>(out >> (8 * i));
    for (int i = 0; i < 8; ++i) bytes[24 + i] = static_cast<unsigned char>(in >> (8 * i));
    check(contains(error_of([&] { (void)bitlinear::load<bitlinear::Ternary>(bytes.data(), bytes.size()); }),
                   "too large for this platform's address space"),
          "load refuses a layer the address space cannot hold");
  }
  if (failures != 0) return EXIT_FAILURE;
  std::printf("32-bit size checks passed\n");
  return EXIT_SUCCESS;
}
