// libFuzzer target for bitlinear::load (buffer and stream). Build and run: .ci/steps/40-fuzz.sh.
//
// Properties checked on every input: loading either throws std::invalid_argument or succeeds; a successful
// load of a current-version file re-saves to exactly the input bytes (the format has one encoding per layer);
// an older-version file re-saves as the current version, which loads to the same layer and re-saves to itself;
// and the stream loader agrees with the buffer loader. Any other exception, crash, sanitizer report or oversized allocation
// (libFuzzer's -malloc_limit_mb) is a bug.
#include <bitlinear/io/serialize.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

template <class Format>
void check_format(const std::uint8_t* data, std::size_t size) {
  bool buffer_ok = false;
  try {
    const auto layer = bitlinear::load<Format>(data, size);
    buffer_ok = true;
    const std::vector<unsigned char> again = bitlinear::save_to_bytes(layer);
    std::uint32_t version = 0;  // bytes 8..11, little-endian (the load checked that they are there)
    for (int i = 3; i >= 0; --i) version = (version << 8) | data[8 + i];
    if (version == bitlinear::saved_layer_version) {
      if (again.size() != size || std::memcmp(again.data(), data, size) != 0) std::abort();
    } else {
      const auto upgraded = bitlinear::load<Format>(again.data(), again.size());
      if (bitlinear::save_to_bytes(upgraded) != again) std::abort();
      if (upgraded.packed_weights() != layer.packed_weights() || upgraded.bias() != layer.bias()) std::abort();
    }
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
