// libFuzzer target for the checkpoint metadata parsers: config.json (parse_hf_config + hf_weight_format) and
// model.safetensors.index.json (parse_hf_index). The first input byte picks the parser, the rest is the
// document. Each call either throws std::invalid_argument or returns a result whose invariants hold (checked
// below); anything else (a crash, a sanitizer report, another exception type) is a bug. Build and run:
// .ci/steps/40-fuzz.sh.
#include <bitlinear/io/hf_config.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (data == nullptr || size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] % 2 == 0) {
      const bitlinear::HfModelConfig c = bitlinear::parse_hf_config(text);
      // Accepted: the document is a valid JSON object, so the lexer's document reader agrees on it.
      const bitlinear::detail::JsonDocument doc(text, "config.json");
      if (!doc.is_object(doc.root())) std::abort();
      try {
        const bitlinear::HfWeightFormat f = bitlinear::hf_weight_format(c.quantization);
        // A format is only ever produced for a bitnet config without use_rms_norm.
        if (c.quantization.quant_method != "bitnet" || c.quantization.use_rms_norm) std::abort();
        if (f == bitlinear::HfWeightFormat::float_online && c.quantization.linear_class != "autobitlinear") std::abort();
      } catch (const std::invalid_argument&) {
      }
      (void)bitlinear::hf_module_not_converted(c.quantization, "model.layers.0.self_attn.q_proj");
    } else {
      const auto entries = bitlinear::parse_hf_index(text);
      for (std::size_t i = 0; i < entries.size(); ++i) {
        const std::string& shard = entries[i].second;
        if (shard.empty() || shard == "." || shard == ".." || shard.find('/') != std::string::npos ||
            shard.find('\\') != std::string::npos || shard.find(':') != std::string::npos ||
            shard.find('\0') != std::string::npos) {
          std::abort();  // a shard name that could leave the checkpoint directory
        }
        if (i > 0 && !(entries[i - 1].first < entries[i].first)) std::abort();  // sorted, unique
      }
    }
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
