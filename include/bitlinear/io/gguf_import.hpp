// bitlinear: build TernaryLinear layers from the I2_S tensors of bitnet.cpp GGUF files (e.g. the official
// microsoft/bitnet-b1.58-2B-4T-gguf file), and load a whole BitNet GGUF model.
//
//   auto file = bitlinear::GgufFile::open("ggml-model-i2_s.gguf");        // maps the file, O(header)
//   auto model = bitlinear::load_gguf_bitnet_layers(file);                 // every I2_S projection
//   const bitlinear::TernaryLinear& q = model.layer("blk.0.attn_q.weight");  // or "model.layers.0.self_attn.q_proj"
//   const bitlinear::GgufTensor& norm = model.tensor("output_norm.weight");   // a view into the mapping
//
// I2_S (bitnet.cpp, src/ggml-bitnet-mad.cpp quantize_i2_s with ACT_PARALLEL, the default of include/gemm-config.h,
// and utils/convert-hf-to-gguf-bitnet.py quantize_to_i2_s, which wrote the published files): a tensor of n
// weights, ne = [in, out], is n / 4 bytes of 2-bit fields followed by a 32-byte tail whose first 4 bytes are one
// little-endian f32 scale. The weights are taken in row-major order (element e = row * in + column) in blocks of
// 128: byte 32 i + g holds element 128 i + 32 k + g in bits 6 - 2k .. 7 - 2k (k = 0..3), as code + 1 (0, 1, 2 =
// -1, 0, +1; 3 is invalid). Each row is whole blocks (in is a multiple of 128, which bitnet.cpp's kernels need),
// so row r is bytes [r in / 4, (r + 1) in / 4). The scale multiplies: bitnet.cpp computes
// (dot(code, q) - sum terms) / activation scale * scale, so dequantized weight = code * scale, which is exactly
// TernaryLinear's weight_scale() (layer.hpp). A scale of zero (an all-zero tensor) imports as zero codes.
//
// Not readable from a file: bitnet.cpp's ARM builds pack 64-weight blocks and its non-ACT_PARALLEL x86 build
// interleaves 4 rows per byte, and no GGUF field records which layout a file has. Every published file and the
// Python converter use the 128-weight layout above, which this import assumes (docs/gguf.md).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "../format.hpp"
#include "../layer.hpp"
#include "../options.hpp"
#include "gguf.hpp"
#include "gguf_hadamard.hpp"
#include "layer_builder.hpp"
#include "safetensors.hpp"

BITLINEAR_NAMESPACE_BEGIN

struct GgufImportOptions {
  static constexpr std::size_t default_max_weight_bytes = std::size_t{1} << 30;  // as HfImportOptions
  Options layer;                                            // the built layer's options (kernel family, ...)
  std::size_t max_weight_bytes = default_max_weight_bytes;  // limit on one layer's packed weight bytes
  // Threads for the conversion: each layer's rows are converted in parallel on this pool (null: on the calling
  // thread). The result is the same for every pool, and so is the error for an invalid row (it names the first
  // invalid row of the tensor). Builds without std::thread (BITLINEAR_HAS_THREADS 0) ignore it.
  ThreadPool* pool = nullptr;

  GgufImportOptions() = default;
  GgufImportOptions(Options layer_options) : layer(layer_options) {}  // NOLINT: implicit, so `Options` works
};

namespace detail {

inline constexpr std::size_t i2s_block = 128;  // weights per I2_S block (x86 layout)

// Row r of an I2_S matrix with `in` columns (a multiple of 128) as canonical Ternary bytes (format.hpp: byte t of
// a 256-weight block holds weights t, 64 + t, 128 + t, 192 + t in bits 0-1, 2-3, 4-5, 6-7, as code + 1). One
// canonical block gathers two I2_S blocks A and B: canonical byte t (g = t mod 32, h = t / 32) takes its fields
// from A[g] and B[g], at the shifts of k = h and k = 2 + h. Returns nonzero if a source byte holds a field 3.
inline unsigned i2s_canonical_row(const std::uint8_t* packed, std::size_t in, std::size_t r, std::uint8_t* row) noexcept {
  const std::uint8_t* src = packed + r * (in / 4);
  const std::size_t pairs = in / (2 * i2s_block);  // canonical blocks made of two I2_S blocks
  unsigned bad = 0;
  for (std::size_t b = 0; b < pairs; ++b) {
    const std::uint8_t* a = src + b * 64;
    const std::uint8_t* c = a + 32;
    std::uint8_t* out = row + b * packed_block_bytes;
    for (std::size_t g = 0; g < 32; ++g) {  // branch-free: the compiler vectorizes both loops
      const unsigned x = a[g], y = c[g];
      bad |= x & (x >> 1) & 0x55u;
      bad |= y & (y >> 1) & 0x55u;
      // h = 0: k = 0 (bits 6-7) and k = 2 (bits 2-3); h = 1: k = 1 (bits 4-5) and k = 3 (bits 0-1).
      out[g] = static_cast<std::uint8_t>(((x >> 6) & 3u) | ((x >> 2) & 3u) << 2 | ((y >> 6) & 3u) << 4 | ((y >> 2) & 3u) << 6);
      out[32 + g] = static_cast<std::uint8_t>(((x >> 4) & 3u) | (x & 3u) << 2 | ((y >> 4) & 3u) << 4 | (y & 3u) << 6);
    }
  }
  if (in % (2 * i2s_block) != 0) {  // a last lone I2_S block: its second half of the canonical block is zero codes
    const std::uint8_t* a = src + pairs * 64;
    std::uint8_t* out = row + pairs * packed_block_bytes;
    for (std::size_t g = 0; g < 32; ++g) {
      const unsigned x = a[g];
      bad |= x & (x >> 1) & 0x55u;
      out[g] = static_cast<std::uint8_t>(((x >> 6) & 3u) | ((x >> 2) & 3u) << 2 | 0x50u);
      out[32 + g] = static_cast<std::uint8_t>(((x >> 4) & 3u) | (x & 3u) << 2 | 0x50u);
    }
  }
  return bad;
}

[[noreturn]] inline void throw_i2s_field_3(const GgufTensor& t, std::size_t in, std::size_t r) {
  const std::uint8_t* src = t.data + r * (in / 4);
  for (std::size_t e = 0; e < in; ++e) {
    const std::size_t byte = e / i2s_block * 32 + e % 32, k = e % i2s_block / 32;
    if (((src[byte] >> (6 - 2 * k)) & 3u) == 3u) {
      fail_invalid_argument("bitlinear: gguf: I2_S tensor " + GgufParser::quoted(t.name) + ": weight [" +
                            std::to_string(r) + "][" + std::to_string(e) + "] has field value 3; valid fields "
                            "are 0, 1, 2 (code + 1)");
    }
  }
  fail_invalid_argument("bitlinear: gguf: I2_S tensor " + GgufParser::quoted(t.name) + ": a field value 3");
}

inline float gguf_f32_at(const std::uint8_t* p) noexcept {
  const auto bits = static_cast<std::uint32_t>(gguf_le(p, 4));
  float f = 0.0f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Checks an I2_S tensor's shape against the library's limits and the budget; returns {rows, in}.
inline std::pair<std::size_t, std::size_t> check_i2s_shape(const GgufTensor& t, std::size_t max_weight_bytes) {
  const std::string named = "bitlinear: gguf: tensor " + GgufParser::quoted(t.name);
  if (t.type != GgufType::i2_s) {
    fail_invalid_argument(named + " has type " + gguf_type_info(t.type).name + " (id " + std::to_string(t.type_id) +
                          "); an I2_S tensor is needed");
  }
  if (t.n_dims != 2 || t.ne[0] == 0 || t.ne[1] == 0) {
    fail_invalid_argument(named + ": I2_S weights must be a non-empty 2-D tensor [in_features, out_features]");
  }
  if (t.ne[0] % i2s_block != 0) {
    fail_invalid_argument(named + ": ne[0] = " + std::to_string(t.ne[0]) + " is not a multiple of 128 (I2_S rows are "
                          "whole 128-weight blocks; bitnet.cpp's converter and kernels need that too)");
  }
  if (t.ne[0] > max_in_features) {
    fail_invalid_argument(named + ": in_features " + std::to_string(t.ne[0]) + " exceeds the limit of 2^20 = 1048576");
  }
  const std::uint64_t row_bytes = Ternary::packed_row_bytes(static_cast<std::size_t>(t.ne[0]));
  if (t.ne[1] > std::numeric_limits<std::uint64_t>::max() / row_bytes || t.ne[1] * row_bytes > max_weight_bytes ||
      t.ne[1] > std::numeric_limits<std::size_t>::max()) {
    fail_invalid_argument(named + ": " + std::to_string(t.ne[1]) + " x " + std::to_string(t.ne[0]) +
                          " ternary weights need more than the import budget max_weight_bytes = " +
                          std::to_string(max_weight_bytes) + " bytes (GgufImportOptions; raise it for larger layers)");
  }
  return {static_cast<std::size_t>(t.ne[1]), static_cast<std::size_t>(t.ne[0])};
}

}  // namespace detail

// The f32 scale of an I2_S tensor (the 4 bytes after its packed weights). Throws std::invalid_argument if the
// tensor is not I2_S.
inline float gguf_i2s_scale(const GgufTensor& t) {
  if (t.type != GgufType::i2_s || !t.size_known || t.size_bytes < 32) {
    detail::fail_invalid_argument("bitlinear: gguf: tensor " + GgufParser::quoted(t.name) + " is not an I2_S tensor");
  }
  return detail::gguf_f32_at(t.data + (t.size_bytes - 32));
}

// Builds a TernaryLinear from an I2_S tensor (ne = [in_features, out_features]), row by row into the layer's own
// buffer. Throws std::invalid_argument naming the tensor for another type, a shape that is not 2-D with ne[0] a
// multiple of 128, a layer beyond options.max_weight_bytes, a field value 3, or a scale that is negative, not
// finite, or without a finite reciprocal.
inline TernaryLinear ternary_from_gguf_i2s(const GgufTensor& t, const GgufImportOptions& options = {}) {
  const auto shape = detail::check_i2s_shape(t, options.max_weight_bytes);
  const std::size_t rows = shape.first, in = shape.second;
  float scale = gguf_i2s_scale(t);
  const bool zero = detail::float_bits(scale) == 0u || detail::float_bits(scale) == 0x80000000u;
  if (!zero) {
    const detail::FpEnvironmentGuard fp_environment;
    const bool positive = detail::is_finite_bits(scale) && detail::is_positive_bits(scale);
    const float reciprocal = positive ? detail::opaque(detail::exact_div(1.0f, scale)) : 0.0f;
    if (!positive || !detail::is_finite_bits(reciprocal)) {
      detail::fail_invalid_argument("bitlinear: gguf: I2_S tensor " + GgufParser::quoted(t.name) + ": scale " +
                                    detail::float_text(scale) + " must be finite and positive (or zero), with a "
                                    "finite reciprocal");
    }
  } else {
    scale = 1.0f;  // every dequantized weight is code * 0 = 0: zero codes with any scale say the same
  }
  // Rows in parallel on options.pool, each converted into a task-local canonical row and scattered into the
  // layer's execution layout. The converted rows are canonical by construction (a lone last I2_S block is padded
  // with code 0), so the one check is the field 3 of the source; a task stops at its first bad row, and the lowest
  // bad row of all (every row below it is still checked) is the one named, as a serial import names it.
  const std::size_t row_bytes = Ternary::packed_row_bytes(in);
  detail::LowestBadRow first_bad(rows);
  TernaryLinear layer = detail::LayerBuilder<Ternary>::build(
      rows, in, scale, nullptr, options.layer, rows, detail::gguf_rows_per_task(in / 4), options.pool,
      [&](const detail::PackedWeightsView& w, std::size_t begin, std::size_t end) {
        std::vector<std::uint8_t> row(row_bytes, Ternary::zero_byte);  // per task: one canonical row
        for (std::size_t r = begin; r < end; ++r) {
          if (first_bad.skip(r)) return;
          if (!zero && detail::i2s_canonical_row(t.data, in, r, row.data()) != 0) {
            first_bad.record(r);
            return;
          }
          detail::scatter_row(w, r, row.data());
        }
      });
  if (first_bad.found()) detail::throw_i2s_field_3(t, in, first_bad.row());
  return layer;
}

// Converts an F32, F16, BF16 or F64 tensor (norms, embeddings) to float32. Throws std::invalid_argument for other
// types.
inline std::vector<float> gguf_to_float(const GgufTensor& t) {
  SafetensorsTensor s;
  s.name = t.name;
  switch (t.type) {
    case GgufType::f32: s.dtype = "F32"; break;
    case GgufType::f16: s.dtype = "F16"; break;
    case GgufType::bf16: s.dtype = "BF16"; break;
    case GgufType::f64: s.dtype = "F64"; break;
    default:
      detail::fail_invalid_argument("bitlinear: gguf: tensor " + GgufParser::quoted(t.name) + " has type " +
                                    t.type_name() + "; F32, F16, BF16 or F64 is needed");
  }
  for (std::uint32_t d = 0; d < t.n_dims; ++d) s.shape.push_back(t.ne[t.n_dims - 1 - d]);
  s.data = t.data;
  s.size_bytes = static_cast<std::size_t>(t.size_bytes);
  return safetensors_to_float(s);
}

// The Hugging Face (transformers BitNet / Llama layout) name of a GGUF tensor name, "" if there is none:
// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight", "token_embd.weight" ->
// "model.embed_tokens.weight", ... Names only: files of architecture "llama" (e.g. Llama3-8B-1.58) were written
// by a converter that permutes the rows of attn_q and attn_k for llama.cpp's rope; bitnet.cpp's BitNet
// converter (architectures "bitnet", "bitnet-b1.58") does not.
inline std::string gguf_to_hf_name(std::string_view name) {
  struct Pair {
    const char* gguf;
    const char* hf;
  };
  static constexpr Pair top[] = {{"token_embd.weight", "model.embed_tokens.weight"},
                                 {"output_norm.weight", "model.norm.weight"},
                                 {"output.weight", "lm_head.weight"}};
  for (const Pair& p : top) {
    if (name == p.gguf) return p.hf;
  }
  static constexpr Pair block[] = {
      {"attn_q", "self_attn.q_proj"},          {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},          {"attn_output", "self_attn.o_proj"},
      {"ffn_gate", "mlp.gate_proj"},           {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"},           {"attn_norm", "input_layernorm"},
      {"ffn_norm", "post_attention_layernorm"}, {"attn_sub_norm", "self_attn.attn_sub_norm"},
      {"ffn_sub_norm", "mlp.ffn_sub_norm"}};
  if (name.substr(0, 4) != "blk.") return "";
  std::size_t i = 4;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i;
  if (i == 4 || i - 4 > 9 || i >= name.size() || name[i] != '.') return "";
  const std::string_view digits = name.substr(4, i - 4);
  if (digits.size() > 1 && digits[0] == '0') return "";
  const std::string_view rest = name.substr(i + 1);
  const std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return "";
  const std::string_view part = rest.substr(0, dot), suffix = rest.substr(dot);  // ".weight", ".bias"
  for (const Pair& p : block) {
    if (part == p.gguf) return "model.layers." + std::string(digits) + "." + p.hf + std::string(suffix);
  }
  return "";
}

// The Hugging Face module name of a GGUF weight ("blk.0.attn_q.weight" -> "model.layers.0.self_attn.q_proj"),
// "" if there is none.
inline std::string gguf_to_hf_module(std::string_view gguf_name) {
  std::string hf = gguf_to_hf_name(gguf_name);
  if (hf.size() > 7 && hf.compare(hf.size() - 7, 7, ".weight") == 0) hf.resize(hf.size() - 7);
  return hf;
}

// The model hyperparameters a BitNet GGUF file declares (keys "<architecture>.*"; 0 where a key is absent).
struct GgufModelConfig {
  std::string architecture;  // general.architecture
  std::string name;          // general.name ("" if absent)
  std::uint64_t file_type = 0;  // general.file_type (bitnet.cpp: 40 = MOSTLY_I2_S)
  std::uint64_t block_count = 0, embedding_length = 0, feed_forward_length = 0, head_count = 0, head_count_kv = 0,
                context_length = 0, rope_dimension_count = 0, vocab_size = 0;
  float rope_freq_base = 0.0f;  // <arch>.rope.freq_base
  float rms_norm_eps = 0.0f;    // <arch>.attention.layer_norm_rms_epsilon
  GgufPrismHadamard hadamard;   // PrismML's prism.hadamard.* rotation metadata (gguf_hadamard.hpp); not applied
};

// Reads the hyperparameters and PrismML's Hadamard metadata. Throws std::invalid_argument if
// general.architecture is missing or not a string, a present key has the wrong type, or prism.hadamard.* keys
// break their contract (gguf_hadamard.hpp).
inline GgufModelConfig gguf_model_config(const GgufView& file) {
  GgufModelConfig c;
  c.architecture = std::string(file.get_string("general.architecture"));
  if (file.find_value("general.name") != nullptr) c.name = std::string(file.get_string("general.name"));
  if (file.find_value("general.file_type") != nullptr) c.file_type = file.get_uint("general.file_type");
  const std::string a = c.architecture + ".";
  auto uint_key = [&](const char* key, std::uint64_t& out) {
    if (file.find_value(a + key) != nullptr) out = file.get_uint(a + key);
  };
  auto float_key = [&](const char* key, float& out) {
    if (file.find_value(a + key) != nullptr) out = static_cast<float>(file.get_double(a + key));
  };
  uint_key("block_count", c.block_count);
  uint_key("embedding_length", c.embedding_length);
  uint_key("feed_forward_length", c.feed_forward_length);
  uint_key("attention.head_count", c.head_count);
  uint_key("attention.head_count_kv", c.head_count_kv);
  uint_key("context_length", c.context_length);
  uint_key("rope.dimension_count", c.rope_dimension_count);
  uint_key("vocab_size", c.vocab_size);
  float_key("rope.freq_base", c.rope_freq_base);
  float_key("attention.layer_norm_rms_epsilon", c.rms_norm_eps);
  c.hadamard = gguf_prism_hadamard(file);
  return c;
}

struct GgufLoadOptions {
  GgufImportOptions import;  // layer options and the per-layer budget
  // Aggregate budget of one load, checked before any layer is built (as BitNetLoadOptions::max_total_bytes).
  static constexpr std::uint64_t default_max_total_bytes = std::uint64_t{4} << 30;
  std::uint64_t max_total_bytes = default_max_total_bytes;
};

struct GgufLayer {
  std::string gguf_name;  // "blk.0.attn_q.weight"
  std::string hf_name;    // "model.layers.0.self_attn.q_proj" (the module, as load_bitnet_layers names it; "" if none)
  TernaryLinear layer;
};

// What every GGUF model holds, with its name indices: `Entry` is a layer entry with gguf_name, hf_name and layer.
template <class Entry>
struct GgufModelIndex {
  GgufModelConfig config;
  std::vector<Entry> layers;               // file order
  std::vector<const GgufTensor*> tensors;  // the tensors that are not layers, file order

  // By GGUF tensor name or Hugging Face module name; O(log n). nullptr if there is no such layer.
  const Entry* find_entry(std::string_view name) const noexcept {
    if (name.empty()) return nullptr;
    for (const std::vector<std::size_t>* idx : {&by_gguf_, &by_hf_}) {
      const bool gguf = idx == &by_gguf_;
      auto key = [&](std::size_t i) -> std::string_view { return gguf ? layers[i].gguf_name : layers[i].hf_name; };
      const auto it = std::lower_bound(idx->begin(), idx->end(), name,
                                       [&](std::size_t i, std::string_view n) { return key(i) < n; });
      if (it != idx->end() && key(*it) == name) return &layers[*it];
    }
    return nullptr;
  }
  const GgufTensor* find_tensor(std::string_view name) const noexcept {
    const auto it = std::lower_bound(tensors_by_name_.begin(), tensors_by_name_.end(), name,
                                     [](const GgufTensor* t, std::string_view n) { return std::string_view(t->name) < n; });
    return it != tensors_by_name_.end() && (*it)->name == name ? *it : nullptr;
  }
  const GgufTensor& tensor(std::string_view name) const {
    const GgufTensor* t = find_tensor(name);
    if (t == nullptr) detail::fail_invalid_argument("bitlinear: gguf: the model has no (non-layer) tensor " + GgufParser::quoted(name));
    return *t;
  }

  // Builds the name indices (the loaders call it; call it again after changing `layers` or `tensors`).
  void index() {
    by_gguf_.resize(layers.size());
    for (std::size_t i = 0; i < by_gguf_.size(); ++i) by_gguf_[i] = i;
    by_hf_ = by_gguf_;
    std::sort(by_gguf_.begin(), by_gguf_.end(), [&](std::size_t a, std::size_t b) { return layers[a].gguf_name < layers[b].gguf_name; });
    std::sort(by_hf_.begin(), by_hf_.end(), [&](std::size_t a, std::size_t b) { return layers[a].hf_name < layers[b].hf_name; });
    tensors_by_name_ = tensors;
    std::sort(tensors_by_name_.begin(), tensors_by_name_.end(),
              [](const GgufTensor* a, const GgufTensor* b) { return a->name < b->name; });
  }

 private:
  std::vector<std::size_t> by_gguf_, by_hf_;
  std::vector<const GgufTensor*> tensors_by_name_;
};

// Every I2_S layer of a GGUF file, its hyperparameters, and views of the other tensors.
struct GgufBitNetModel : GgufModelIndex<GgufLayer> {
  // By GGUF tensor name or Hugging Face module name; O(log n).
  const TernaryLinear* find_layer(std::string_view name) const noexcept {
    const GgufLayer* e = find_entry(name);
    return e == nullptr ? nullptr : &e->layer;
  }
  const TernaryLinear& layer(std::string_view name) const {
    const TernaryLinear* l = find_layer(name);
    if (l == nullptr) detail::fail_invalid_argument("bitlinear: gguf: the model has no I2_S layer " + GgufParser::quoted(name));
    return *l;
  }
  std::size_t weight_bytes() const noexcept {
    std::size_t n = 0;
    for (const GgufLayer& l : layers) n += l.layer.packed_weights_size();
    return n;
  }
};

// Loads every I2_S tensor of a bitnet.cpp GGUF file as a layer (one after another: the transient memory is one
// row), with the hyperparameters and views of the other tensors (pointing into `file`'s bytes: keep them alive).
// Throws std::invalid_argument if: a tensor has type id 36 but the file does not say it is bitnet.cpp's I2_S
// (general.architecture not "bitnet" / "bitnet-b1.58" and general.file_type not 40: upstream ggml uses 36 for
// another type, so the file cannot be told apart); one of the seven projections of a block below
// <arch>.block_count is missing or not I2_S; the layers need more than options.max_total_bytes; or a layer
// import fails (ternary_from_gguf_i2s, naming the tensor).
namespace detail {

// Refuses a file with a tensor of type id 36 that the reader could not take as bitnet.cpp's I2_S.
inline void check_no_ambiguous_i2s(const GgufView& file, const GgufModelConfig& config) {
  for (const GgufTensor& t : file.tensors()) {
    if (t.type_id == 36 && t.type != GgufType::i2_s) {
      detail::fail_invalid_argument(
          "bitlinear: gguf: tensor " + GgufParser::quoted(t.name) + " has type id 36, which is I2_S in bitnet.cpp "
          "files but another type in upstream ggml; this file's general.architecture is " +
          GgufParser::quoted(config.architecture) + " and general.file_type " + std::to_string(config.file_type) +
          " (bitnet.cpp writes \"bitnet\" / \"bitnet-b1.58\" or file type 40), so it cannot be told apart");
    }
  }
}

inline constexpr const char* gguf_block_projections[] = {"attn_q",      "attn_k",   "attn_v", "attn_output",
                                                         "ffn_gate",    "ffn_up",   "ffn_down"};

template <class AfterLayer>
GgufBitNetModel load_gguf_bitnet_layers(const GgufView& file, const GgufLoadOptions& options, AfterLayer&& after_layer) {
  GgufBitNetModel model;
  model.config = gguf_model_config(file);
  check_no_ambiguous_i2s(file, model.config);
  for (std::uint64_t b = 0; b < model.config.block_count; ++b) {
    for (const char* p : gguf_block_projections) {
      const std::string name = "blk." + std::to_string(b) + "." + p + ".weight";
      const GgufTensor* t = file.find(name);
      if (t == nullptr || t->type != GgufType::i2_s) {
        detail::fail_invalid_argument(
            "bitlinear: gguf: " + model.config.architecture + ".block_count is " + std::to_string(model.config.block_count) +
            ", but tensor " + GgufParser::quoted(name) +
            (t == nullptr ? std::string(" is missing") : std::string(" has type ") + t->type_name() + ", not I2_S") +
            " (this loader imports I2_S projections)");
      }
    }
  }
  std::uint64_t total = 0;
  std::size_t count = 0;
  for (const GgufTensor& t : file.tensors()) {
    if (t.type != GgufType::i2_s) continue;
    ++count;
    const auto shape = detail::check_i2s_shape(t, options.import.max_weight_bytes);
    total += static_cast<std::uint64_t>(shape.first) * Ternary::packed_row_bytes(shape.second);  // each <= 2^30
    if (total > options.max_total_bytes) {
      detail::fail_invalid_argument("bitlinear: gguf: the I2_S layers need more than the aggregate budget "
                                    "GgufLoadOptions::max_total_bytes = " + std::to_string(options.max_total_bytes) +
                                    " bytes (raise it for larger models)");
    }
  }
  model.layers.reserve(count);
  for (const GgufTensor& t : file.tensors()) {
    if (t.type != GgufType::i2_s) {
      model.tensors.push_back(&t);
      continue;
    }
    model.layers.push_back({t.name, gguf_to_hf_module(t.name), ternary_from_gguf_i2s(t, options.import)});
    after_layer(t);
  }
  model.index();
  return model;
}

}  // namespace detail

inline GgufBitNetModel load_gguf_bitnet_layers(const GgufView& file, const GgufLoadOptions& options = {}) {
  return detail::load_gguf_bitnet_layers(file, options, [](const GgufTensor&) {});
}

// The same from a GgufFile; a mapped file's pages of each imported tensor are released once its layer is built
// (GgufFile::release), so the peak resident memory is the layers plus about one tensor.
inline GgufBitNetModel load_gguf_bitnet_layers(const GgufFile& file, const GgufLoadOptions& options = {}) {
  return detail::load_gguf_bitnet_layers(file.view(), options, [&](const GgufTensor& t) { file.release(t); });
}

BITLINEAR_NAMESPACE_END
