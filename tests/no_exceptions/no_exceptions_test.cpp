// Built with -fno-exceptions: every error goes to the error handler (error.hpp) with the message an exception
// would carry. One process per case (the handler ends the process): `no_exceptions_test <case>`.
//   - most cases install a handler that checks the kind and a substring of the message, then exits 0 (match)
//     or 1 (mismatch); a call that returns without reporting exits 2;
//   - "default_handler" installs none: the default prints the message and aborts (checked by the CMake script
//     run_no_exceptions_case.cmake from the exit status and stderr);
//   - "handler_returns" installs a handler that returns: the library must abort anyway;
//   - "works" runs a forward (single- and multithreaded when the pool exists) and exits 0 if it matches scalar.
// Includes every public header, so that each compiles without exceptions.
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/io/gguf.hpp>
#include <bitlinear/io/gguf_import.hpp>
#include <bitlinear/io/hf_import.hpp>
#include <bitlinear/io/safetensors.hpp>
#include <bitlinear/io/serialize.hpp>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || BITLINEAR_EXCEPTIONS
#error "this test must be compiled without exceptions"
#endif

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace {

bitlinear::ErrorKind expected_kind = bitlinear::ErrorKind::invalid_argument;
const char* expected_text = "";

[[noreturn]] void finish(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(code);
}

void checking_handler(bitlinear::ErrorKind kind, const char* message) {
  const bool kind_ok = kind == expected_kind;
  const bool text_ok = std::strstr(message, expected_text) != nullptr;
  const char* kind_name = kind == bitlinear::ErrorKind::invalid_argument ? "invalid_argument" : "runtime_error";
  std::printf("handler: %s: %s\n", kind_name, message);
  if (!kind_ok) std::printf("FAIL: wrong kind\n");
  if (!text_ok) std::printf("FAIL: message lacks \"%s\"\n", expected_text);
  finish(kind_ok && text_ok ? 0 : 1);
}

void returning_handler(bitlinear::ErrorKind, const char* message) {
  std::printf("handler returns after: %s\n", message);
  std::fflush(stdout);
}

void expect(bitlinear::ErrorKind kind, const char* text) {
  expected_kind = kind;
  expected_text = text;
  bitlinear::set_error_handler(&checking_handler);
}

std::vector<float> weights(std::size_t n) {
  std::vector<float> w(n);
  for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<float>((i * 7919) % 201) / 100.0f - 1.0f;
  return w;
}

bool forward_works() {
  const std::size_t out = 70, in = 300, batch = 3;
  const std::vector<float> w = weights(out * in), x = weights(batch * in);
  std::vector<float> y(batch * out), y_scalar(batch * out);
  bitlinear::Options scalar;
  scalar.isa = bitlinear::Isa::scalar;
  const auto layer = bitlinear::BinaryLinear::from_float(w.data(), out, in);
  const auto reference = bitlinear::BinaryLinear::from_float(w.data(), out, in, nullptr, scalar);
  layer.forward(x.data(), batch, y.data());
  reference.forward(x.data(), batch, y_scalar.data());
  bool ok = std::memcmp(y.data(), y_scalar.data(), y.size() * sizeof(float)) == 0;
#if BITLINEAR_HAS_THREADS
  bitlinear::ThreadPool pool(2);
  std::vector<float> y_pool(batch * out);
  layer.forward(x.data(), batch, y_pool.data(), pool);
  ok = ok && std::memcmp(y_pool.data(), y_scalar.data(), y.size() * sizeof(float)) == 0;
#endif
  std::printf("forward on %s %s scalar\n", std::string(bitlinear::isa_name(layer.isa())).c_str(),
              ok ? "matches" : "DIFFERS FROM");
  return ok;
}

void run_case(const std::string& name) {
  using bitlinear::ErrorKind;
  const std::vector<float> w = weights(64);
  if (name == "works") {
    finish(forward_works() && bitlinear::set_error_handler(nullptr) == nullptr ? 0 : 1);
  } else if (name == "handler_is_returned") {
    bitlinear::set_error_handler(&returning_handler);
    const bool ok = bitlinear::set_error_handler(nullptr) == &returning_handler;
    finish(ok ? 0 : 1);
  } else if (name == "require") {
    expect(ErrorKind::invalid_argument, "bitlinear: out_features is 0; it must be at least 1");
    bitlinear::TernaryLinear::from_float(w.data(), 0, 8);
  } else if (name == "non_finite_weight") {
    std::vector<float> bad = w;
    bad[4] = std::numeric_limits<float>::quiet_NaN();
    expect(ErrorKind::invalid_argument, "bitlinear: weight[4] = nan is not finite");
    bitlinear::BinaryLinear::from_float(bad.data(), 2, 3);
  } else if (name == "non_finite_bias") {
    const float bias[] = {0.0f, std::numeric_limits<float>::infinity()};
    expect(ErrorKind::invalid_argument, "bitlinear: bias[1] = inf is not finite");
    bitlinear::TernaryLinear::from_float(w.data(), 2, 3, bias);
  } else if (name == "workspace") {
    const auto layer = bitlinear::TernaryLinear::from_float(w.data(), 2, 3);
    float x[3] = {1, 2, 3}, y[2] = {};
    unsigned char workspace[8];
    expect(ErrorKind::invalid_argument, "bitlinear: activation workspace of 8 bytes is too small");
    layer.forward(x, 1, 3, y, 2, workspace, sizeof workspace);
  } else if (name == "parse_isa") {
    expect(ErrorKind::invalid_argument, "bitlinear: unknown kernel family \"bogus\"");
    bitlinear::parse_isa("bogus");
  } else if (name == "unsupported_isa") {
    bitlinear::Options options;
    options.isa = BITLINEAR_ARCH_AARCH64 ? bitlinear::Isa::avx2 : bitlinear::Isa::neon;
    expect(ErrorKind::runtime_error, "cannot run on this CPU");
    bitlinear::TernaryLinear::from_float(w.data(), 2, 3, nullptr, options);
  } else if (name == "environment_isa") {  // ctest sets BITLINEAR_ISA=bogus for this case
    expect(ErrorKind::runtime_error, "bitlinear: BITLINEAR_ISA=\"bogus\" is not a kernel family");
    bitlinear::active_isa();
  } else if (name == "pack_codes") {
    const std::int8_t codes[] = {1, 0, 5};
    std::vector<std::uint8_t> packed(bitlinear::packed_size<bitlinear::Ternary>(1, 3));
    expect(ErrorKind::invalid_argument, "code 5 at [0][2] is not a valid ternary code");
    bitlinear::pack_codes<bitlinear::Ternary>(codes, 1, 3, packed.data());
  } else if (name == "packed_rows") {
    // Row 2 holds field value 3 (not a ternary code) in its first weight.
    const auto fill_row = [](std::size_t j, std::uint8_t* row) {
      std::vector<std::int8_t> codes(8, 0);
      bitlinear::pack_codes<bitlinear::Ternary>(codes.data(), 1, 8, row);
      if (j == 2) row[0] = static_cast<std::uint8_t>(row[0] | 3u);
    };
    expect(ErrorKind::invalid_argument, "holds field value 3, which is not a valid ternary field (0, 1 or 2) (in row 2");
    bitlinear::TernaryLinear::from_packed_rows(fill_row, 4, 8, 0.5f);
  } else if (name == "saved_layer") {
    const unsigned char junk[64] = {1, 2, 3};
    expect(ErrorKind::invalid_argument, "bitlinear: saved layer: wrong magic");
    bitlinear::load<bitlinear::Ternary>(junk, sizeof junk);
  } else if (name == "safetensors") {
    const unsigned char junk[3] = {1, 2, 3};
    expect(ErrorKind::invalid_argument, "bitlinear: safetensors: truncated: 3 bytes");
    bitlinear::SafetensorsView::parse(junk, sizeof junk);
  } else if (name == "gguf") {
    const unsigned char junk[8] = {'G', 'G', 'U', 'X', 3, 0, 0, 0};
    expect(ErrorKind::invalid_argument, "bitlinear: gguf: magic is not \"GGUF\"");
    bitlinear::GgufView::parse(junk, sizeof junk);
  } else if (name == "gguf_file") {
    expect(ErrorKind::runtime_error, "bitlinear: cannot open \"no/such/file.gguf\"");
    bitlinear::GgufFile::open("no/such/file.gguf");
  } else if (name == "safetensors_file") {
    expect(ErrorKind::runtime_error, "bitlinear: cannot open \"no/such/file.safetensors\"");
    bitlinear::SafetensorsFile::open("no/such/file.safetensors");
#if BITLINEAR_HAS_THREADS
  } else if (name == "thread_pool") {
    expect(ErrorKind::invalid_argument, "bitlinear: ThreadPool of 0 threads");
    bitlinear::ThreadPool pool(0);
#endif
  } else if (name == "default_handler") {
    bitlinear::TernaryLinear::from_float(w.data(), 8, 0);
  } else if (name == "handler_returns") {
    bitlinear::set_error_handler(&returning_handler);
    bitlinear::TernaryLinear::from_float(w.data(), 8, 0);
  } else {
    std::printf("unknown case %s\n", name.c_str());
    finish(3);
  }
  std::printf("FAIL: case %s returned without reporting an error\n", name.c_str());
  finish(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::printf("usage: no_exceptions_test <case>\n");
    return 3;
  }
  run_case(argv[1]);
}
