// libFuzzer target for bitlinear::load (buffer and stream). Build and run: .ci/steps/40-fuzz.sh.
//
// Properties checked on every input: loading either throws std::invalid_argument or succeeds; a successful
// load re-saves to exactly the input bytes (the format has one encoding per layer), and the stream loader
// agrees with the buffer loader. Any other exception, crash, sanitizer report or oversized allocation
// (libFuzzer's -malloc_limit_mb) is a bug.
#include <bitlinear/serialize.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>

namespace {

template <class Format>
void check_format(const std::uint8_t* data, std::size_t size) {
  bool buffer_ok = false;
  try {
    const auto layer = bitlinear::load<Format>(data, size);
    buffer_ok = true;
    const std::vector<unsigned char> again = bitlinear::save_to_bytes(layer);
    if (again.size() != size || std::memcmp(again.data(), data, size) != 0) std::abort();
    std::vector<float> x(layer.in_features(), 0.5f);
    std::vector<float> out(layer.out_features());
    layer.forward(x.data(), 1, out.data());
  } catch (const std::invalid_argument&) {
  }
  std::istringstream stream(std::string(reinterpret_cast<const char*>(data), size));
  try {
    const auto layer = bitlinear::load<Format>(stream);
    // The stream loader stops after one layer, so it may accept input with trailing bytes; never less.
    if (!buffer_ok && bitlinear::read_saved_layer_header(data, size).total_bytes == size) std::abort();
  } catch (const std::invalid_argument&) {
    if (buffer_ok) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (data == nullptr) return 0;  // libFuzzer may pass null for the empty input
  check_format<bitlinear::Ternary>(data, size);
  check_format<bitlinear::Binary>(data, size);
  return 0;
}
