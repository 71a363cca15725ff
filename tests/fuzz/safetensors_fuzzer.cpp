// libFuzzer target for the safetensors reader and the Hugging Face BitNet import. Build and run:
// .ci/steps/40-fuzz.sh. Parsing either throws std::invalid_argument or yields tensors whose bytes lie inside
// the input (ASan checks every read below); importing a "<name>.weight" tensor likewise throws
// std::invalid_argument or builds a layer. Anything else is a bug.
#include <bitlinear/io/hf_import.hpp>
#include <bitlinear/io/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (data == nullptr) return 0;
  bitlinear::SafetensorsView view;
  bool parsed = true;
  try {
    view = bitlinear::SafetensorsView::parse(data, size);
  } catch (const std::invalid_argument&) {
    parsed = false;
  }
  // The stream reader (header first, then exactly the data the header describes) accepts the same inputs and
  // finds the same tensors, with the size known (regular files) and unknown (pipes).
  for (bool size_known : {true, false}) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    try {
      const auto file = bitlinear::SafetensorsFile::read(in, size_known ? std::optional<std::uint64_t>(size) : std::nullopt);
      if (!parsed || file.view().tensors().size() != view.tensors().size()) std::abort();
      for (const bitlinear::SafetensorsTensor& t : view.tensors()) {
        const bitlinear::SafetensorsTensor* u = file.view().find(t.name);
        if (u == nullptr || u->size_bytes != t.size_bytes || std::memcmp(u->data, t.data, t.size_bytes) != 0) std::abort();
      }
    } catch (const std::invalid_argument&) {
      if (parsed) std::abort();
    }
  }
  if (!parsed) return 0;
  unsigned checksum = 0;
  for (const bitlinear::SafetensorsTensor& t : view.tensors()) {
    if (t.size_bytes != 0 && (t.data < data || t.data + t.size_bytes > data + size)) std::abort();
    for (std::size_t i = 0; i < t.size_bytes; ++i) checksum += t.data[i];  // touch every byte
    try {
      (void)bitlinear::safetensors_to_float(t);
    } catch (const std::invalid_argument&) {
    }
    const std::string suffix = ".weight";
    if (t.name.size() > suffix.size() && t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string prefix = t.name.substr(0, t.name.size() - suffix.size());
      for (auto convention : {bitlinear::HfScaleConvention::divide, bitlinear::HfScaleConvention::multiply}) {
        try {
          const auto layer = bitlinear::ternary_from_hf_checkpoint(view, prefix, convention);
          if (layer.out_features() != 4 * t.shape[0]) std::abort();
        } catch (const std::invalid_argument&) {
        }
      }
    }
  }
  volatile unsigned sink = checksum;
  (void)sink;
  return 0;
}
