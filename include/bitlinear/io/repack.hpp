// bitlinear: the streaming repack of Hugging Face packed BitNet weights (hf_import.hpp describes the layout) into
// canonical rows, written straight into a layer's execution layout.
//
// Source row j of an HF weight U8 [R, in] holds output rows i * R + j (i = 0..3) in bits 2i..2i+1 of its bytes.
// A canonical 2-bit block (format.hpp) gathers weights k, k + 64, k + 128, k + 192 of one output row into one byte.
// So 256 source bytes (one block's worth of weights of source row j) become one 64-byte block of each of the
// four output rows: byte t of output row i's block is
//   field_i(src[t]) | field_i(src[64 + t]) << 2 | field_i(src[128 + t]) << 4 | field_i(src[192 + t]) << 6,
// a 4 x 4 transpose of 2-bit fields, done 8 bytes at a time in 64-bit words (each output byte takes its bits
// from one byte lane of each input word; the masks drop what shifts carry across lanes, so the word order of the
// machine does not matter). The field value 3 (invalid) is found with one OR over the source row:
// a field is 3 iff both its bits are set. Weights past in_features are padding: the source block is completed
// with 0x55 (every field 1, code 0), so output rows are canonical by construction.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "../format.hpp"
#include "../format_compact.hpp"
#include "../kernels/interface.hpp"
#include "layer_builder.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

inline std::uint64_t load_u64(const std::uint8_t* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void store_u64(std::uint8_t* p, std::uint64_t v) noexcept { std::memcpy(p, &v, 8); }

// One 256-byte source block -> the four 64-byte output blocks d0..d3. Returns a nonzero value iff some field of
// the source block is 3.
inline std::uint64_t hf_transpose_block(const std::uint8_t* src, std::uint8_t* d0, std::uint8_t* d1, std::uint8_t* d2,
                                        std::uint8_t* d3) noexcept {
  constexpr std::uint64_t m = 0x0303030303030303u;  // bits 0..1 of every byte lane
  std::uint64_t both = 0;
  for (std::size_t t = 0; t < 64; t += 8) {
    const std::uint64_t a = load_u64(src + t), b = load_u64(src + 64 + t), c = load_u64(src + 128 + t),
                        d = load_u64(src + 192 + t);
    both |= (a & a >> 1) | (b & b >> 1) | (c & c >> 1) | (d & d >> 1);
    store_u64(d0 + t, (a & m) | (b & m) << 2 | (c & m) << 4 | (d & m) << 6);
    store_u64(d1 + t, (a >> 2 & m) | (b & m << 2) | (c << 2 & m << 4) | (d << 4 & m << 6));
    store_u64(d2 + t, (a >> 4 & m) | (b >> 2 & m << 2) | (c & m << 4) | (d << 2 & m << 6));
    store_u64(d3 + t, (a >> 6 & m) | (b >> 4 & m << 2) | (c >> 2 & m << 4) | (d & m << 6));
  }
  return both & 0x5555555555555555u;  // the low bit of every field: set iff the field is 3
}

// Source rows [j_begin, j_end) of the HF weight `packed` ([packed_rows, in_features]) -> output rows i * R + j of
// the execution layout `w`. Returns false if some field is 3 (the rows written are then garbage: callers throw).
inline bool hf_repack_rows(const std::uint8_t* packed, std::size_t packed_rows, std::size_t in_features,
                           const PackedWeightsView& w, std::size_t j_begin, std::size_t j_end) noexcept {
  const std::size_t full = in_features / 256, tail = in_features % 256;
  std::uint64_t bad = 0;
  std::uint8_t last[256];
  for (std::size_t j = j_begin; j < j_end; ++j) {
    const std::uint8_t* src = packed + j * in_features;
    std::uint8_t* dst[4];
    std::size_t step[4];
    for (std::size_t i = 0; i < 4; ++i) {
      dst[i] = block_in_layout(w, i * packed_rows + j, 0);
      step[i] = w.block_step(i * packed_rows + j);
    }
    for (std::size_t b = 0; b < full; ++b) {
      bad |= hf_transpose_block(src + 256 * b, dst[0] + b * step[0], dst[1] + b * step[1], dst[2] + b * step[2],
                                dst[3] + b * step[3]);
    }
    if (tail != 0) {
      std::memcpy(last, src + 256 * full, tail);
      std::memset(last + tail, Ternary::zero_byte, 256 - tail);
      bad |= hf_transpose_block(last, dst[0] + full * step[0], dst[1] + full * step[1], dst[2] + full * step[2],
                                dst[3] + full * step[3]);
    }
  }
  return bad == 0;
}

// Source rows per task: about 256 KiB of source, so that a pool's threads share a layer evenly.
inline std::size_t hf_rows_per_task(std::size_t in_features) noexcept {
  return std::max<std::size_t>(1, (std::size_t{1} << 18) / in_features);
}

[[noreturn]] inline void throw_hf_field_3(std::size_t j, std::size_t k, std::size_t i) {
  detail::fail_invalid_argument("bitlinear: HF packed weight byte [" + std::to_string(j) + "][" + std::to_string(k) +
                                "] holds field value 3 in bits " + std::to_string(2 * i) + ".." +
                                std::to_string(2 * i + 1) + "; valid fields are 0, 1, 2 (code + 1)");
}

// After a bulk check failed: names the first field 3 in the order of output rows (row i * R + j, then weight k),
// the error an import row by row reports.
[[noreturn]] inline void throw_first_hf_field_3(const std::uint8_t* packed, std::size_t packed_rows,
                                                std::size_t in_features) {
  for (std::size_t i = 0; i < 4; ++i) {
    for (std::size_t j = 0; j < packed_rows; ++j) {
      const std::uint8_t* src = packed + j * in_features;
      for (std::size_t k = 0; k < in_features; ++k) {
        if ((src[k] >> (2 * i) & 3u) == 3u) throw_hf_field_3(j, k, i);
      }
    }
  }
  detail::fail_runtime_error("bitlinear: HF repack reported a field value 3 that is not there");
}

// Source rows [j_begin, j_end) -> compact rows (format_compact.hpp) i * R + j of `w`. `fields` is scratch of at
// least packed_row_bytes<TernaryCompact>(in) / 64 * 320 bytes: one source row's fields for one i, padded with 1.
inline bool hf_compact_rows(const std::uint8_t* packed, std::size_t packed_rows, std::size_t in_features,
                            const PackedWeightsView& w, std::size_t j_begin, std::size_t j_end,
                            std::uint8_t* fields) noexcept {
  const std::size_t blocks = TernaryCompact::packed_row_bytes(in_features) / packed_block_bytes;
  const std::size_t padded = blocks * TernaryCompact::weights_per_block;
  std::memset(fields + in_features, 1, padded - in_features);
  unsigned bad = 0;
  for (std::size_t j = j_begin; j < j_end; ++j) {
    const std::uint8_t* src = packed + j * in_features;
    for (std::size_t k = 0; k < in_features; ++k) bad |= src[k] & (src[k] >> 1) & 0x55u;
    for (std::size_t i = 0; i < 4; ++i) {
      const unsigned shift = static_cast<unsigned>(2 * i);
      for (std::size_t k = 0; k < in_features; ++k) fields[k] = static_cast<std::uint8_t>(src[k] >> shift & 3u);
      const std::size_t r = i * packed_rows + j;
      for (std::size_t b = 0; b < blocks; ++b) {
        const std::uint8_t* f = fields + b * TernaryCompact::weights_per_block;
        std::uint8_t* out = block_in_layout(w, r, b);
        for (std::size_t t = 0; t < packed_block_bytes; ++t) {
          // A field 3 makes an index past 242: clamp it (the row is refused anyway).
          const unsigned v = f[t] + 3u * f[64 + t] + 9u * f[128 + t] + 27u * f[192 + t] + 81u * f[256 + t];
          out[t] = compact_table.encode[v < 243 ? v : 0];
        }
      }
    }
  }
  return bad == 0;
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
