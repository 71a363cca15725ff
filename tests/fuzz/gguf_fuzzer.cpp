// libFuzzer target for the GGUF reader and the I2_S import. Build and run: .ci/steps/40-fuzz.sh. Parsing either
// throws std::invalid_argument or yields metadata and tensors whose bytes lie inside the input (ASan checks every
// read below); the stream reader agrees with the in-memory parser; importing an I2_S tensor and loading the
// model either throw std::invalid_argument or build layers; the same for the group-scaled types (TQ1_0, TQ2_0,
// Q1_0, Q2_0, PrismML's PQ2_0, PTQ1_0 and Q2_0_g128; the base-3 ones also as 1.6-bit layers), row reads, the
// prism.hadamard.* metadata and the whole-model loader of every type. Anything else is a bug.
#include <bitlinear/io/gguf.hpp>
#include <bitlinear/io/gguf_grouped_import.hpp>
#include <bitlinear/io/gguf_import.hpp>
#include <bitlinear/io/gguf_model.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace {

unsigned touch(const bitlinear::GgufValue& v, int depth) {
  unsigned sum = static_cast<unsigned>(v.type());
  if (auto s = v.as_string()) {
    for (char c : *s) sum += static_cast<unsigned char>(c);
  } else if (auto a = v.as_array()) {
    if (depth > bitlinear::GgufParser::max_array_depth) std::abort();
    for (const bitlinear::GgufValue& e : a->elements()) sum += touch(e, depth + 1);
  } else if (auto u = v.as_uint()) {
    sum += static_cast<unsigned>(*u);
  } else if (auto d = v.as_double()) {
    sum += *d > 0 ? 1u : 0u;
  }
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (data == nullptr) return 0;
  bitlinear::GgufView view;
  bool parsed = true;
  try {
    view = bitlinear::GgufView::parse(data, size);
  } catch (const std::invalid_argument&) {
    parsed = false;
  }
  for (bool size_known : {true, false}) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    try {
      const auto file = bitlinear::GgufFile::read(in, size_known ? std::optional<std::uint64_t>(size) : std::nullopt);
      if (!parsed || file.view().tensors().size() != view.tensors().size()) std::abort();
    } catch (const std::invalid_argument&) {
      if (parsed) std::abort();
    }
  }
  if (!parsed) return 0;
  unsigned checksum = 0;
  for (const bitlinear::GgufKeyValue& kv : view.metadata()) {
    if (view.find_value(kv.key) == nullptr) std::abort();
    checksum += touch(kv.value, 0);
  }
  const std::uint8_t* data_begin = data + view.data_offset();
  for (const bitlinear::GgufTensor& t : view.tensors()) {
    if (view.find(t.name) != &t) std::abort();
    if (t.size_bytes != 0 && (t.data < data_begin || t.offset + t.size_bytes > view.data_size())) std::abort();
    for (std::uint64_t i = 0; i < t.size_bytes; ++i) checksum += t.data[i];
    try {
      (void)bitlinear::gguf_to_float(t);
    } catch (const std::invalid_argument&) {
    }
    if (t.n_dims == 2 && t.ne[0] > 0 && t.ne[0] <= 4096 && t.ne[1] > 0) {
      std::vector<float> row(static_cast<std::size_t>(t.ne[0]));
      try {
        bitlinear::gguf_row_to_float(t, static_cast<std::size_t>(t.ne[1] - 1), row.data());
      } catch (const std::invalid_argument&) {
      }
    }
    if (bitlinear::gguf_block_type(t)) {
      bitlinear::GgufImportOptions o;
      o.max_weight_bytes = std::size_t{1} << 22;
      try {
        if (bitlinear::gguf_block_info(*bitlinear::gguf_block_type(t)).binary) {
          const auto layer = bitlinear::grouped_from_gguf<bitlinear::Binary>(t, o);
          if (layer.in_features() != t.ne[0] || layer.out_features() != t.ne[1]) std::abort();
        } else {
          const auto layer = bitlinear::grouped_from_gguf<bitlinear::Ternary>(t, o);
          if (layer.in_features() != t.ne[0] || layer.out_features() != t.ne[1]) std::abort();
          if (t.type == bitlinear::GgufType::tq1_0 || t.type == bitlinear::GgufType::ptq1_0) {
            const auto compact = bitlinear::grouped_from_gguf<bitlinear::TernaryCompact>(t, o);
            if (compact.unpacked_weights() != layer.unpacked_weights()) std::abort();
          }
        }
      } catch (const std::invalid_argument&) {
      }
    }
    if (t.type == bitlinear::GgufType::i2_s) {
      bitlinear::GgufImportOptions o;
      o.max_weight_bytes = std::size_t{1} << 22;
      try {
        const auto layer = bitlinear::ternary_from_gguf_i2s(t, o);
        if (layer.in_features() != t.ne[0] || layer.out_features() != t.ne[1]) std::abort();
      } catch (const std::invalid_argument&) {
      }
    }
  }
  try {
    (void)bitlinear::gguf_prism_hadamard(view);
  } catch (const std::invalid_argument&) {
  }
  try {
    bitlinear::GgufLoadOptions o;
    o.import.max_weight_bytes = std::size_t{1} << 22;
    o.max_total_bytes = std::uint64_t{1} << 24;
    (void)bitlinear::load_gguf_bitnet_layers(view, o);
  } catch (const std::invalid_argument&) {
  }
  try {
    bitlinear::GgufModelLoadOptions o;
    o.import.max_weight_bytes = std::size_t{1} << 22;
    o.max_total_bytes = std::uint64_t{1} << 24;
    const bitlinear::GgufModel model = bitlinear::load_gguf_layers(view, o);
    for (const bitlinear::GgufModelLayer& l : model.layers) {
      if (model.find_layer(l.gguf_name) == nullptr) std::abort();
      std::visit([](const auto& layer) { if (layer.in_features() == 0) std::abort(); }, l.layer);
    }
  } catch (const std::invalid_argument&) {
  }
  volatile unsigned sink = checksum;
  (void)sink;
  return 0;
}
