// bitlinear: load every ternary and 1-bit projection of a GGUF model file, whatever its type: bitnet.cpp's I2_S
// (per-tensor scale) and the group-scaled TQ2_0, TQ1_0, Q2_0 and Q1_0 of llama.cpp / PrismML files, and PrismML's
// PQ2_0, PTQ1_0 and legacy Q2_0_g128 (id 42 with 128-weight blocks).
//
//   auto file = bitlinear::GgufFile::open("Bonsai-8B-Q1_0.gguf");               // maps the file, O(header)
//   auto model = bitlinear::load_gguf_layers(file);                             // every ternary / 1-bit weight
//   const bitlinear::GgufAnyLayer& q = model.layer("blk.0.attn_q.weight");     // or "model.layers.0.self_attn.q_proj"
//   std::visit([&](const auto& l) { l.forward(x, batch, y); }, q);              // one call per layer kind
//   if (const auto* g = model.find<bitlinear::GroupedBinaryLinear>("blk.0.attn_q.weight")) { ... }
//
// Which tensor becomes which layer:
//   I2_S           -> TernaryLinear                (gguf_import.hpp)
//   TQ2_0, Q2_0, PQ2_0, Q2_0_g128 -> GroupedTernaryLinear  (gguf_grouped_import.hpp)
//   TQ1_0, PTQ1_0  -> GroupedCompactTernaryLinear  (1.6 bits; GgufModelLoadOptions::tq1_0_compact / ptq1_0_compact)
//   Q1_0           -> GroupedBinaryLinear
// PrismML's Ternary-Bonsai-2 files fold a signed blockwise Walsh-Hadamard rotation into some weights; the loader
// reads and checks its prism.hadamard.* metadata into model.config.hadamard (gguf_hadamard.hpp) but does not apply
// it: the caller rotates those layers' activations (ActivationFrontend's hadamard_block / hadamard_signs).
// Every 2-D tensor of those types is a layer except the token embedding (`token_embd.weight`, a lookup table, not
// a matmul: gguf_row_to_float reads its rows). Tensors of other types (norms, F16 or K-quant heads and
// embeddings, and any projection a quantizer kept at higher precision) stay views into the file, as
// load_gguf_bitnet_layers does.
//
// Activations: the layers take options.import.layer.activation_scale. ActivationScale::per_block is llama.cpp's
// Q8_0 quantization bit for bit, which it uses for Q1_0 and Q2_0 weights; ActivationScale::per_superblock is its
// Q8_K (per-256 blocks, float scale), which it uses for TQ1_0 / TQ2_0 (gguf_grouped_import.hpp). I2_S layers are
// per-tensor BitNet layers and refuse both.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "../fp16.hpp"
#include "../grouped_layer.hpp"
#include "../layer.hpp"
#include "gguf.hpp"
#include "gguf_blocks.hpp"
#include "gguf_grouped_import.hpp"
#include "gguf_import.hpp"

BITLINEAR_NAMESPACE_BEGIN

// One layer of a GGUF model, of the kind its tensor type gives.
using GgufAnyLayer = std::variant<TernaryLinear, GroupedTernaryLinear, GroupedCompactTernaryLinear, GroupedBinaryLinear>;

struct GgufModelLoadOptions {
  GgufImportOptions import;  // the layers' options and the per-layer budget
  // Aggregate budget of one load, checked before any layer is built.
  std::uint64_t max_total_bytes = GgufLoadOptions::default_max_total_bytes;
  // TQ1_0 as GroupedCompactTernaryLinear (1.6 bits per weight, as stored); false: GroupedTernaryLinear (2 bits,
  // the faster kernels on families without a native compact kernel).
  bool tq1_0_compact = true;
  // PTQ1_0 likewise (PrismML's 128-weight TQ1_0 codec).
  bool ptq1_0_compact = true;
};

struct GgufModelLayer {
  std::string gguf_name;  // "blk.0.attn_q.weight"
  std::string hf_name;    // "model.layers.0.self_attn.q_proj" ("" if the name has no Hugging Face counterpart)
  GgufType type = GgufType::unknown;  // the tensor's type in the file
  GgufAnyLayer layer;
};

// Every ternary / 1-bit layer of a GGUF file, its hyperparameters, and views of the other tensors (find_entry,
// find_tensor, tensor and index come from GgufModelIndex, gguf_import.hpp).
struct GgufModel : GgufModelIndex<GgufModelLayer> {
  // By GGUF tensor name or Hugging Face module name; O(log n). nullptr if there is no such layer.
  const GgufAnyLayer* find_layer(std::string_view name) const noexcept {
    const GgufModelLayer* e = find_entry(name);
    return e == nullptr ? nullptr : &e->layer;
  }
  // The layer as kind L (TernaryLinear, GroupedBinaryLinear, ...); nullptr if there is none or it is another kind.
  template <class L>
  const L* find(std::string_view name) const noexcept {
    const GgufAnyLayer* l = find_layer(name);
    return l == nullptr ? nullptr : std::get_if<L>(l);
  }
  // Throws std::invalid_argument naming the layer, and its type if the tensor exists but is not a layer.
  const GgufAnyLayer& layer(std::string_view name) const {
    const GgufAnyLayer* l = find_layer(name);
    if (l != nullptr) return *l;
    const GgufTensor* t = find_tensor(name);
    detail::fail_invalid_argument(
        "bitlinear: gguf: the model has no ternary or 1-bit layer " + GgufParser::quoted(name) +
        (t == nullptr ? std::string()
                      : std::string(": the tensor has type ") + t->type_name() + " and is kept as a tensor view"));
  }
  // The layers' weight bytes (codes and group scales).
  std::size_t weight_bytes() const noexcept {
    std::size_t n = 0;
    for (const GgufModelLayer& l : layers) n += std::visit([](const auto& x) { return layer_bytes(x); }, l.layer);
    return n;
  }

 private:
  static std::size_t layer_bytes(const TernaryLinear& l) noexcept { return l.packed_weights_size(); }
  template <class Format>
  static std::size_t layer_bytes(const GroupedLinear<Format>& l) noexcept {
    return l.packed_weights_size() + l.out_features() * (l.in_features() / l.group_size()) * sizeof(float);
  }
};

namespace detail {

// Does tensor t become a layer of load_gguf_layers?
inline bool gguf_is_model_layer(const GgufTensor& t) noexcept {
  if (t.name == "token_embd.weight" || t.n_dims != 2) return false;
  return t.type == GgufType::i2_s || gguf_block_type(t).has_value();
}

// The bytes the layer of tensor t will hold, checked against the per-layer budget (the import functions check
// the same again, with the same messages).
inline std::uint64_t gguf_model_layer_bytes(const GgufTensor& t, const GgufModelLoadOptions& options) {
  if (t.type == GgufType::i2_s) {
    const auto shape = check_i2s_shape(t, options.import.max_weight_bytes);
    return static_cast<std::uint64_t>(shape.first) * Ternary::packed_row_bytes(shape.second);
  }
  const GgufBlockTypeInfo info = gguf_block_info(*gguf_block_type(t));
  const std::string named = "bitlinear: gguf: tensor " + GgufParser::quoted(t.name);
  if (t.ne[0] == 0 || t.ne[1] == 0) detail::fail_invalid_argument(named + ": a weight must be a non-empty 2-D tensor");
  if (t.ne[0] > max_in_features) {
    detail::fail_invalid_argument(named + ": in_features " + std::to_string(t.ne[0]) + " exceeds the limit of 2^20 = 1048576");
  }
  const auto in = static_cast<std::size_t>(t.ne[0]);
  std::size_t code_bytes = 0;
  if (info.binary) {
    code_bytes = Binary::packed_row_bytes(in);
  } else if ((t.type == GgufType::tq1_0 && options.tq1_0_compact) ||
             (t.type == GgufType::ptq1_0 && options.ptq1_0_compact)) {
    code_bytes = TernaryCompact::packed_row_bytes(in);
  } else {
    code_bytes = Ternary::packed_row_bytes(in);
  }
  const std::uint64_t row_bytes = code_bytes + in / info.block_weights * sizeof(float);
  if (t.ne[1] > options.import.max_weight_bytes / row_bytes) {
    detail::fail_invalid_argument(named + ": " + std::to_string(t.ne[1]) + " x " + std::to_string(t.ne[0]) + " " +
                                  info.name + " weights need more than the import budget max_weight_bytes = " +
                                  std::to_string(options.import.max_weight_bytes) +
                                  " bytes (GgufImportOptions; raise it for larger layers)");
  }
  return t.ne[1] * row_bytes;
}

inline GgufAnyLayer gguf_model_layer(const GgufTensor& t, const GgufModelLoadOptions& options) {
  switch (t.type) {
    case GgufType::i2_s: return ternary_from_gguf_i2s(t, options.import);
    case GgufType::q1_0: return grouped_from_gguf<Binary>(t, options.import);
    case GgufType::tq1_0:
      if (options.tq1_0_compact) return grouped_from_gguf<TernaryCompact>(t, options.import);
      return grouped_from_gguf<Ternary>(t, options.import);
    case GgufType::ptq1_0:
      if (options.ptq1_0_compact) return grouped_from_gguf<TernaryCompact>(t, options.import);
      return grouped_from_gguf<Ternary>(t, options.import);
    default: return grouped_from_gguf<Ternary>(t, options.import);  // TQ2_0, Q2_0, PQ2_0, Q2_0_g128
  }
}

template <class AfterLayer>
GgufModel load_gguf_layers(const GgufView& file, const GgufModelLoadOptions& options, AfterLayer&& after_layer) {
  GgufModel model;
  model.config = gguf_model_config(file);
  check_no_ambiguous_i2s(file, model.config);
  for (std::uint64_t b = 0; b < model.config.block_count; ++b) {
    for (const char* p : gguf_block_projections) {
      const std::string name = "blk." + std::to_string(b) + "." + p + ".weight";
      if (file.find(name) == nullptr) {
        detail::fail_invalid_argument("bitlinear: gguf: " + model.config.architecture + ".block_count is " +
                                      std::to_string(model.config.block_count) + ", but tensor " +
                                      GgufParser::quoted(name) + " is missing");
      }
    }
  }
  std::uint64_t total = 0;
  std::size_t count = 0;
  for (const GgufTensor& t : file.tensors()) {
    if (!gguf_is_model_layer(t)) continue;
    ++count;
    total += gguf_model_layer_bytes(t, options);  // each <= max_weight_bytes
    if (total > options.max_total_bytes) {
      detail::fail_invalid_argument("bitlinear: gguf: the layers need more than the aggregate budget "
                                    "GgufModelLoadOptions::max_total_bytes = " + std::to_string(options.max_total_bytes) +
                                    " bytes (raise it for larger models)");
    }
  }
  model.layers.reserve(count);
  for (const GgufTensor& t : file.tensors()) {
    if (!gguf_is_model_layer(t)) {
      model.tensors.push_back(&t);
      continue;
    }
    model.layers.push_back({t.name, gguf_to_hf_module(t.name), t.type, gguf_model_layer(t, options)});
    after_layer(t);
  }
  model.index();
  return model;
}

}  // namespace detail

// Loads every ternary / 1-bit layer of a GGUF file (one after another, each layer's rows in parallel on
// options.import.pool if given: the transient memory is at most a row per thread), with
// the hyperparameters and views of the other tensors (pointing into `file`'s bytes: keep them alive). Throws
// std::invalid_argument if: a tensor has type id 36 but the file does not say it is bitnet.cpp's I2_S (see
// load_gguf_bitnet_layers); one of the seven projections of a block below <arch>.block_count is missing (of any
// type: a projection of another type stays a tensor view); the layers need more than options.max_total_bytes;
// or a layer import fails (naming the tensor).
inline GgufModel load_gguf_layers(const GgufView& file, const GgufModelLoadOptions& options = {}) {
  return detail::load_gguf_layers(file, options, [](const GgufTensor&) {});
}

// The same from a GgufFile; a mapped file's pages of each imported tensor are released once its layer is built
// (GgufFile::release), so the peak resident memory is the layers plus about one tensor.
inline GgufModel load_gguf_layers(const GgufFile& file, const GgufModelLoadOptions& options = {}) {
  return detail::load_gguf_layers(file.view(), options, [&](const GgufTensor& t) { file.release(t); });
}

// Row r of a 2-D tensor as float32, dequantized exactly (code x fp16 block scale, one rounding-free product per
// weight: codes are small integers and the scales fp16): F32, F16, BF16, TQ1_0, TQ2_0, Q1_0, Q2_0, PQ2_0, PTQ1_0,
// Q2_0_g128. For the token
// embedding of a group-scaled file (and any tensor kept as a view). `out` holds ne[0] floats. Throws
// std::invalid_argument naming the tensor for another type, a shape that is not 2-D or a row out of range.
inline void gguf_row_to_float(const GgufTensor& t, std::size_t r, float* out) {
  const std::string named = "bitlinear: gguf: tensor " + GgufParser::quoted(t.name);
  if (t.n_dims != 2 || t.ne[0] == 0 || t.ne[0] > max_in_features) {
    detail::fail_invalid_argument(named + ": row reads need a 2-D tensor with 1 .. 2^20 columns");
  }
  if (r >= t.ne[1]) {
    detail::fail_invalid_argument(named + ": row " + std::to_string(r) + " is out of range (the tensor has " +
                                  std::to_string(t.ne[1]) + " rows)");
  }
  BITLINEAR_REQUIRE(t.size_known, named + ": the tensor's size is not known");
  const auto in = static_cast<std::size_t>(t.ne[0]);
  const std::optional<GgufBlockType> block = gguf_block_type(t);
  if (block) {
    const GgufBlockTypeInfo info = gguf_block_info(*block);
    const std::size_t src_row_bytes = gguf_block_row_bytes(*block, in);
    BITLINEAR_REQUIRE(t.size_bytes / src_row_bytes >= t.ne[1], named + ": the tensor's bytes do not hold its rows");
    const std::size_t codes_bytes = info.binary ? Binary::packed_row_bytes(in) : Ternary::packed_row_bytes(in);
    std::vector<std::uint8_t> codes(codes_bytes);
    std::vector<float> scales(in / info.block_weights);
    decode_gguf_row(*block, t.data + r * src_row_bytes, in, codes.data(), scales.data());
    for (std::size_t k = 0; k < in; ++k) {
      const int code = info.binary ? Binary::code_at(codes.data(), k) : Ternary::code_at(codes.data(), k);
      out[k] = static_cast<float>(code) * scales[k / info.block_weights];
    }
    return;
  }
  std::size_t element = 0;
  switch (t.type) {
    case GgufType::f32: element = 4; break;
    case GgufType::f16:
    case GgufType::bf16: element = 2; break;
    default:
      detail::fail_invalid_argument(named + " has type " + t.type_name() +
                                    "; row reads take F32, F16, BF16, TQ1_0, TQ2_0, Q1_0, Q2_0, PQ2_0, PTQ1_0 or "
                                    "Q2_0_g128");
  }
  BITLINEAR_REQUIRE(t.size_bytes / (in * element) >= t.ne[1], named + ": the tensor's bytes do not hold its rows");
  const std::uint8_t* src = t.data + r * in * element;
  for (std::size_t k = 0; k < in; ++k) {
    const std::uint8_t* p = src + k * element;
    if (t.type == GgufType::f32) {
      out[k] = detail::gguf_f32_at(p);
    } else {
      const auto bits = static_cast<std::uint16_t>(p[0] | (p[1] << 8));
      if (t.type == GgufType::f16) {
        out[k] = fp16_to_float(bits);
      } else {
        const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
        float f;
        std::memcpy(&f, &wide, sizeof f);
        out[k] = f;
      }
    }
  }
}

BITLINEAR_NAMESPACE_END
