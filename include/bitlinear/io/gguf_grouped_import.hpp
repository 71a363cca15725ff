// bitlinear: GGUF tensors of the group-scaled ternary and 1-bit types (TQ1_0, TQ2_0, Q1_0, Q2_0, and PrismML's
// PQ2_0, PTQ1_0 and legacy Q2_0_g128) as GroupedLinear layers, row by row from the file's bytes into the layer's
// own buffers (the only full copy).
//
//   TQ2_0, Q2_0, PQ2_0, Q2_0_g128 -> GroupedTernaryLinear  (2-bit codes -1..+2; group 256 / 64 / 128 / 128)
//   TQ1_0, PTQ1_0 -> GroupedCompactTernaryLinear  (1.6-bit, their own size class; or GroupedTernaryLinear;
//                                                  group 256 / 128)
//   Q1_0          -> GroupedBinaryLinear          (group 128)
// The layer's group scales are the blocks' fp16 d, converted exactly (gguf_blocks.hpp has the layouts and their
// sources). A GGUF weight tensor is ne = [in_features, out_features]. Activations: llama.cpp quantizes them per
// block of 32 (Q8_0) for Q1_0 and Q2_0, which ActivationScale::per_block reproduces bit for bit; for TQ1_0 and
// TQ2_0 it uses per-256 blocks with a float scale (Q8_K), which ActivationScale::per_superblock reproduces bit
// for bit (quantize.hpp has both rules). PrismML's runtime quantizes activations for PQ2_0 / PTQ1_0 as Q8_0 on its
// generic CPU path (ggml_vec_dot_ptq1_0_q8_0, ggml_vec_dot_pq2_0_q8_0), also Q8_K in an x86 PQ2_0 kernel: see
// docs/gguf.md for what is confirmed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#include "../config.hpp"
#include "../error.hpp"
#include "../format.hpp"
#include "../format_compact.hpp"
#include "../grouped_layer.hpp"
#include "gguf.hpp"
#include "gguf_blocks.hpp"
#include "gguf_import.hpp"

BITLINEAR_NAMESPACE_BEGIN

// The block type of a tensor, if it is one of the group-scaled ternary / 1-bit types.
inline std::optional<GgufBlockType> gguf_block_type(const GgufTensor& t) noexcept {
  switch (t.type) {
    case GgufType::tq1_0: return GgufBlockType::tq1_0;
    case GgufType::tq2_0: return GgufBlockType::tq2_0;
    case GgufType::q1_0: return GgufBlockType::q1_0;
    case GgufType::q2_0: return GgufBlockType::q2_0;
    case GgufType::pq2_0: return GgufBlockType::pq2_0;
    case GgufType::ptq1_0: return GgufBlockType::ptq1_0;
    case GgufType::q2_0_g128: return GgufBlockType::q2_0_g128;
    default: return std::nullopt;
  }
}

// Builds a GroupedLinear<Format> from a TQ1_0, TQ2_0, Q1_0, Q2_0, PQ2_0, PTQ1_0 or Q2_0_g128 tensor. Format must
// hold the type's codes: Binary for Q1_0; Ternary for TQ2_0, Q2_0, PQ2_0 and Q2_0_g128; Ternary or TernaryCompact
// for TQ1_0 and PTQ1_0. Rows are converted in parallel on options.pool if given (the same layer for every pool).
// Throws std::invalid_argument naming the tensor for another type or Format, a shape that is not 2-D, in_features
// beyond 2^20, a layer beyond options.max_weight_bytes, or a block scale that is not finite (naming the first such
// row's group, with or without a pool).
template <class Format>
GroupedLinear<Format> grouped_from_gguf(const GgufTensor& t, const GgufImportOptions& options = {},
                                        const float* bias = nullptr) {
  const std::string named = "bitlinear: gguf: tensor " + GgufParser::quoted(t.name);
  const std::optional<GgufBlockType> type = gguf_block_type(t);
  if (!type) {
    detail::fail_invalid_argument(named + " has type " + t.type_name() + " (id " + std::to_string(t.type_id) +
                                  "); a group-scaled layer is built from TQ1_0, TQ2_0, Q1_0, Q2_0, PQ2_0, PTQ1_0 or "
                                  "Q2_0_g128");
  }
  const GgufBlockTypeInfo info = gguf_block_info(*type);
  constexpr bool binary = std::is_same<Format, Binary>::value;
  constexpr bool compact = std::is_same<Format, TernaryCompact>::value;
  const bool base3 = *type == GgufBlockType::tq1_0 || *type == GgufBlockType::ptq1_0;  // codes -1, 0, +1 only
  const bool fits = info.binary ? binary : (!binary && (!compact || base3));
  if (!fits) {
    const char* layer = info.binary ? "GroupedBinaryLinear"
                        : base3     ? "GroupedCompactTernaryLinear or GroupedTernaryLinear"
                                    : "GroupedTernaryLinear";
    detail::fail_invalid_argument(named + " (" + info.name + ") holds " +
                                  (info.binary ? "codes -1, +1" : base3 ? "codes -1, 0, +1" : "codes -1, 0, +1, +2") +
                                  ": build it as " + layer);
  }
  if (t.n_dims != 2 || t.ne[0] == 0 || t.ne[1] == 0) {
    detail::fail_invalid_argument(named + ": a weight must be a non-empty 2-D tensor [in_features, out_features]");
  }
  if (t.ne[0] > max_in_features) {
    detail::fail_invalid_argument(named + ": in_features " + std::to_string(t.ne[0]) + " exceeds the limit of 2^20 = 1048576");
  }
  const auto in = static_cast<std::size_t>(t.ne[0]);
  const std::size_t groups = in / info.block_weights;
  // The layer's bytes: codes plus a float per group, per row; compared in 64-bit arithmetic.
  const std::uint64_t layer_row_bytes = Format::packed_row_bytes(in) + groups * sizeof(float);
  if (t.ne[1] > std::numeric_limits<std::uint64_t>::max() / layer_row_bytes ||
      t.ne[1] * layer_row_bytes > options.max_weight_bytes || t.ne[1] > std::numeric_limits<std::size_t>::max()) {
    detail::fail_invalid_argument(named + ": " + std::to_string(t.ne[1]) + " x " + std::to_string(t.ne[0]) + " " +
                                  info.name + " weights need more than the import budget max_weight_bytes = " +
                                  std::to_string(options.max_weight_bytes) +
                                  " bytes (GgufImportOptions; raise it for larger layers)");
  }
  const auto rows = static_cast<std::size_t>(t.ne[1]);
  const std::size_t src_row_bytes = gguf_block_row_bytes(*type, in);  // the reader checked ne[0] % block == 0
  BITLINEAR_REQUIRE(t.size_known && t.size_bytes >= static_cast<std::uint64_t>(rows) * src_row_bytes,
                    named + ": the tensor's bytes do not hold its " + std::to_string(rows) + " rows");
  // Rows in parallel on options.pool (null: in order on this thread); the layer and any error are the same.
  return detail::GroupedLayerBuilder<Format>::build(
      [&](std::size_t r, std::uint8_t* row, float* scales) {
        const std::uint8_t* src = t.data + r * src_row_bytes;
        if constexpr (compact) {
          decode_gguf_row_compact(*type, src, in, row, scales);
        } else {
          decode_gguf_row(*type, src, in, row, scales);
        }
      },
      rows, in, info.block_weights, bias, options.layer, detail::gguf_rows_per_task(src_row_bytes), options.pool);
}

BITLINEAR_NAMESPACE_END
