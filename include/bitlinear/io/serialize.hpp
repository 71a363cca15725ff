// bitlinear: save a layer to bytes and load it back, on any CPU (the packed weights are the canonical layout
// of format.hpp, so a file written on x86 loads on ARM and the other way round).
//
// File format, version 3 (version 1 is version 2 without kind 3, version 2 is version 3 without kinds 4-6 and
// without activation scale 2; all three load). Every integer is little-endian, floats are IEEE-754 binary32 bit
// patterns stored as little-endian uint32. Offsets in bytes:
//
//   offset  size              field
//   0       8                 magic: 0x89 'B' 'L' 'N' '\r' '\n' 0x1A '\n' (PNG-style: catches text-mode damage)
//   8       4   u32           format version: 3 (written), 1, 2 or 3 (read)
//   12      4   u32           kind: 1 = ternary (BitNet b1.58), 2 = binary (BitNet b1),
//                             3 = compact ternary (1.6 bits per weight, format_compact.hpp; from version 2),
//                             4 = grouped ternary (2-bit), 5 = grouped binary, 6 = grouped compact ternary
//                             (grouped_layer.hpp; from version 3)
//   16      8   u64           out_features  (>= 1)
//   24      8   u64           in_features   (1 ..= 2^20; out_features * in_features <= 2^40)
//   32      4   u32           activation scale: 0 = per_token, 1 = per_tensor, 2 = per_block, 3 = per_superblock
//                             (2 and 3: grouped kinds only)
//   36      4   u32           flags: bit 0 = has bias; every other bit must be 0
//   40      4   f32           kinds 1-3: weight_scale (beta; ternary: finite and > 0, binary: finite and >= 0)
//               u32           kinds 4-6: group_size (32, 64, 128 or 256 dividing in_features, or in_features)
//   44      8   u64           packed weight bytes: must equal packed_size<Format>(out_features, in_features)
//   52      4 * out (if bias) f32 bias[out_features], each finite
//   ...     4 * out * groups  kinds 4-6 only: f32 group scales [out_features * in_features / group_size], finite
//   ...     packed bytes      canonical packed weights (format.hpp, format_compact.hpp), validated on load
//   ...     4   u32           CRC-32 (zlib's crc32) of every byte before it
//
// Loading never trusts the header: sizes are checked against the bytes actually present before anything is
// allocated (a stream is read in chunks of at most 1 MiB, so a header that claims terabytes costs at most one
// chunk), and every failure throws std::invalid_argument naming the bad field and the rule it broke. A
// stream that fails while writing throws std::runtime_error.
//
//   std::ofstream out("layer.bin", std::ios::binary);  bitlinear::save(layer, out);
//   std::ifstream in("layer.bin", std::ios::binary);   auto layer = bitlinear::load<bitlinear::Ternary>(in);
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <ostream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "crc32.hpp"
#include "../format.hpp"
#include "../format_compact.hpp"
#include "../grouped_layer.hpp"
#include "../layer.hpp"
#include "../options.hpp"

BITLINEAR_NAMESPACE_BEGIN

inline constexpr unsigned char saved_layer_magic[8] = {0x89, 'B', 'L', 'N', '\r', '\n', 0x1A, '\n'};
inline constexpr std::uint32_t saved_layer_version = 3;  // what save writes
inline constexpr std::uint32_t saved_layer_oldest_version = 1;  // the oldest version load reads
inline constexpr std::size_t saved_layer_header_bytes = 52;
inline constexpr std::size_t saved_layer_checksum_bytes = 4;

enum class SavedKind : std::uint32_t {
  ternary = 1,
  binary = 2,
  ternary_compact = 3,
  grouped_ternary = 4,
  grouped_binary = 5,
  grouped_ternary_compact = 6
};

// What a saved layer's header says, after every header check passed.
struct SavedLayerInfo {
  SavedKind kind = SavedKind::ternary;
  std::size_t out_features = 0;
  std::size_t in_features = 0;
  ActivationScale activation_scale = ActivationScale::per_token;
  bool has_bias = false;
  float weight_scale = 0.0f;    // kinds 1-3
  std::size_t group_size = 0;   // kinds 4-6
  std::size_t scale_count = 0;  // kinds 4-6: out_features * in_features / group_size
  std::size_t packed_bytes = 0;
  std::size_t total_bytes = 0;  // the whole saved layer, header to checksum
};

namespace detail {

template <class Format>
constexpr SavedKind saved_kind_of() noexcept {
  if constexpr (std::is_same<Format, TernaryCompact>::value) {
    return SavedKind::ternary_compact;
  } else {
    return Format::bits_per_weight == 2 ? SavedKind::ternary : SavedKind::binary;
  }
}

template <class Format>
constexpr SavedKind saved_grouped_kind_of() noexcept {
  if constexpr (std::is_same<Format, TernaryCompact>::value) {
    return SavedKind::grouped_ternary_compact;
  } else {
    return Format::bits_per_weight == 2 ? SavedKind::grouped_ternary : SavedKind::grouped_binary;
  }
}

inline bool saved_kind_grouped(SavedKind kind) noexcept { return static_cast<std::uint32_t>(kind) >= 4; }

inline const char* saved_kind_name(SavedKind kind) noexcept {
  switch (kind) {
    case SavedKind::ternary: return "ternary";
    case SavedKind::binary: return "binary";
    case SavedKind::ternary_compact: return "compact ternary";
    case SavedKind::grouped_ternary: return "grouped ternary";
    case SavedKind::grouped_binary: return "grouped binary";
    case SavedKind::grouped_ternary_compact: return "grouped compact ternary";
  }
  return "unknown";
}

// Bytes of one packed row of a kind.
inline std::size_t saved_row_bytes(SavedKind kind, std::size_t in_features) noexcept {
  switch (kind) {
    case SavedKind::binary:
    case SavedKind::grouped_binary: return Binary::packed_row_bytes(in_features);
    case SavedKind::ternary_compact:
    case SavedKind::grouped_ternary_compact: return TernaryCompact::packed_row_bytes(in_features);
    default: return Ternary::packed_row_bytes(in_features);
  }
}

inline std::uint32_t read_u32_le(const unsigned char* p) noexcept {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}
inline std::uint64_t read_u64_le(const unsigned char* p) noexcept {
  return static_cast<std::uint64_t>(read_u32_le(p)) | static_cast<std::uint64_t>(read_u32_le(p + 4)) << 32;
}
inline float read_f32_le(const unsigned char* p) noexcept {
  const std::uint32_t bits = read_u32_le(p);
  float value = 0.0f;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}
inline void put_u32_le(std::vector<unsigned char>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
inline void put_u64_le(std::vector<unsigned char>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
inline void put_f32_le(std::vector<unsigned char>& out, float v) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  put_u32_le(out, bits);
}

[[noreturn]] inline void throw_bad_file(const std::string& message) {
  detail::fail_invalid_argument("bitlinear: saved layer: " + message);
}

}  // namespace detail

// Parses and checks the fixed 52-byte header (`size` bytes available at `data`, at least the header). Checks
// magic, version, kind, dimensions, options, flags and that the packed size matches the dimensions; it does
// not look at the payload. Throws std::invalid_argument.
inline SavedLayerInfo read_saved_layer_header(const void* data, std::size_t size) {
  if (data == nullptr) detail::throw_bad_file("data is null");
  const auto* p = static_cast<const unsigned char*>(data);
  // The magic first (on as many of its bytes as there are), so that a short foreign file says "wrong magic".
  const std::size_t magic_bytes = size < sizeof saved_layer_magic ? size : sizeof saved_layer_magic;
  if (std::memcmp(p, saved_layer_magic, magic_bytes) != 0) {
    detail::throw_bad_file("wrong magic: these bytes are not a saved bitlinear layer");
  }
  if (size < saved_layer_header_bytes) {
    detail::throw_bad_file("truncated: " + std::to_string(size) + " bytes, but the header alone is " +
                           std::to_string(saved_layer_header_bytes));
  }
  const std::uint32_t version = detail::read_u32_le(p + 8);
  if (version < saved_layer_oldest_version || version > saved_layer_version) {
    detail::throw_bad_file("format version " + std::to_string(version) + " is not supported (this build reads " +
                           std::to_string(saved_layer_oldest_version) + " to " + std::to_string(saved_layer_version) +
                           ")");
  }
  const std::uint32_t kind = detail::read_u32_le(p + 12);
  if (kind < 1 || kind > 6 || (kind == 3 && version < 2) || (kind >= 4 && version < 3)) {
    detail::throw_bad_file("kind " + std::to_string(kind) + " is unknown in format version " +
                           std::to_string(version) +
                           " (1 = ternary, 2 = binary, 3 = compact ternary from version 2, 4-6 = grouped ternary, "
                           "binary and compact ternary from version 3)");
  }
  const bool grouped = kind >= 4;
  const std::uint64_t out = detail::read_u64_le(p + 16);
  const std::uint64_t in = detail::read_u64_le(p + 24);
  if (out == 0 || in == 0) {
    detail::throw_bad_file("dimensions " + std::to_string(out) + "x" + std::to_string(in) + " must be at least 1x1");
  }
  if (in > max_in_features) {
    detail::throw_bad_file("in_features " + std::to_string(in) + " exceeds the limit of 2^20 = 1048576");
  }
  if (out > (std::uint64_t{1} << 40) / in) {
    detail::throw_bad_file("out_features " + std::to_string(out) + " x in_features " + std::to_string(in) +
                           " exceeds the limit of 2^40 weights");
  }
  const std::uint32_t scale_mode = detail::read_u32_le(p + 32);
  if (scale_mode > 3 || (scale_mode >= 2 && !grouped)) {
    detail::throw_bad_file("activation scale " + std::to_string(scale_mode) + " is unknown for kind " +
                           std::to_string(kind) +
                           " (0 = per_token, 1 = per_tensor; 2 = per_block, 3 = per_superblock for grouped kinds 4-6 "
                           "only)");
  }
  std::uint64_t group_size = 0;
  if (grouped) {
    group_size = detail::read_u32_le(p + 40);
    bool listed = false;
    for (std::size_t g : detail::grouped_sizes) listed = listed || g == group_size;
    if (!(group_size == in || (listed && in % group_size == 0))) {
      detail::throw_bad_file("group_size " + std::to_string(group_size) + " is not allowed for in_features " +
                             std::to_string(in) +
                             ": it must be 32, 64, 128 or 256 and divide in_features, or equal in_features");
    }
  }
  const std::uint64_t scale_count = grouped ? out * (in / group_size) : 0;
  const std::uint32_t flags = detail::read_u32_le(p + 36);
  if ((flags & ~1u) != 0) {
    detail::throw_bad_file("flags " + std::to_string(flags) + " set reserved bits; only bit 0 (has bias) is defined");
  }
  // Sizes in 64-bit arithmetic (out * in <= 2^40): a layer whose bytes this platform cannot address (a 32-bit
  // size_t) is refused before any of them is narrowed to size_t.
  const std::uint64_t row_bytes = detail::saved_row_bytes(static_cast<SavedKind>(kind), static_cast<std::size_t>(in));
  const bool bias_flag = (flags & 1u) != 0;
  const std::uint64_t total64 = saved_layer_header_bytes + (bias_flag ? 4 * out : 0) + 4 * scale_count +
                                out * row_bytes + saved_layer_checksum_bytes;
  if (total64 > detail::max_buffer_bytes || out * in > detail::max_buffer_bytes / sizeof(float)) {
    detail::throw_bad_file("a " + std::to_string(out) + "x" + std::to_string(in) +
                           " layer is too large for this platform's address space");
  }
  SavedLayerInfo info;
  info.kind = static_cast<SavedKind>(kind);
  info.out_features = static_cast<std::size_t>(out);
  info.in_features = static_cast<std::size_t>(in);
  info.activation_scale = scale_mode == 0   ? ActivationScale::per_token
                          : scale_mode == 1 ? ActivationScale::per_tensor
                          : scale_mode == 2 ? ActivationScale::per_block
                                            : ActivationScale::per_superblock;
  info.has_bias = (flags & 1u) != 0;
  if (grouped) {
    info.group_size = static_cast<std::size_t>(group_size);
    info.scale_count = static_cast<std::size_t>(scale_count);
  } else {
    info.weight_scale = detail::read_f32_le(p + 40);
  }
  // Both products fit easily: out * in <= 2^40, so out * row_bytes <= 2^40 / 4 and out * 4 <= 2^42.
  const std::uint64_t expected_packed = static_cast<std::uint64_t>(info.out_features) * row_bytes;
  const std::uint64_t packed = detail::read_u64_le(p + 44);
  if (packed != expected_packed) {
    detail::throw_bad_file("packed weights are declared as " + std::to_string(packed) + " bytes, but a " +
                           detail::saved_kind_name(info.kind) + " " + std::to_string(out) + "x" +
                           std::to_string(in) + " layer has exactly " + std::to_string(expected_packed));
  }
  info.packed_bytes = static_cast<std::size_t>(packed);
  info.total_bytes = saved_layer_header_bytes + (info.has_bias ? 4 * info.out_features : 0) + 4 * info.scale_count +
                     info.packed_bytes + saved_layer_checksum_bytes;
  return info;
}

// The saved bytes of a layer (the format above).
template <class Format>
std::vector<unsigned char> save_to_bytes(const BitLinear<Format>& layer) {
  BITLINEAR_REQUIRE(!layer.empty(), "cannot save an empty layer (it was moved from)");
  std::vector<unsigned char> bytes;
  const std::size_t out = layer.out_features();
  bytes.reserve(saved_layer_header_bytes + (layer.has_bias() ? 4 * out : 0) + layer.packed_weights_size() + 4);
  bytes.insert(bytes.end(), saved_layer_magic, saved_layer_magic + sizeof saved_layer_magic);
  detail::put_u32_le(bytes, saved_layer_version);
  detail::put_u32_le(bytes, static_cast<std::uint32_t>(detail::saved_kind_of<Format>()));
  detail::put_u64_le(bytes, out);
  detail::put_u64_le(bytes, layer.in_features());
  detail::put_u32_le(bytes, layer.options().activation_scale == ActivationScale::per_tensor ? 1u : 0u);
  detail::put_u32_le(bytes, layer.has_bias() ? 1u : 0u);
  detail::put_f32_le(bytes, layer.weight_scale());
  detail::put_u64_le(bytes, layer.packed_weights_size());
  if (layer.has_bias()) {
    for (std::size_t j = 0; j < out; ++j) detail::put_f32_le(bytes, layer.bias()[j]);
  }
  const std::size_t weights_at = bytes.size();
  bytes.resize(weights_at + layer.packed_weights_size());
  layer.copy_packed_weights(bytes.data() + weights_at, layer.packed_weights_size());
  detail::put_u32_le(bytes, detail::crc32_update(0, bytes.data(), bytes.size()));
  return bytes;
}

// The saved bytes of a grouped layer (kinds 4-6 of the format above).
template <class Format>
std::vector<unsigned char> save_to_bytes(const GroupedLinear<Format>& layer) {
  BITLINEAR_REQUIRE(!layer.empty(), "cannot save an empty layer (it was moved from)");
  const std::size_t out = layer.out_features();
  const std::vector<float>& scales = layer.group_scales();
  // Constructed from the magic, not insert()ed: GCC 12 reports a false stringop-overflow on the insert here.
  std::vector<unsigned char> bytes(saved_layer_magic, saved_layer_magic + sizeof saved_layer_magic);
  bytes.reserve(saved_layer_header_bytes + (layer.has_bias() ? 4 * out : 0) + 4 * scales.size() +
                layer.packed_weights_size() + 4);
  detail::put_u32_le(bytes, saved_layer_version);
  detail::put_u32_le(bytes, static_cast<std::uint32_t>(detail::saved_grouped_kind_of<Format>()));
  detail::put_u64_le(bytes, out);
  detail::put_u64_le(bytes, layer.in_features());
  const ActivationScale mode = layer.options().activation_scale;
  const std::uint32_t mode_code = mode == ActivationScale::per_tensor       ? 1u
                                  : mode == ActivationScale::per_block      ? 2u
                                  : mode == ActivationScale::per_superblock ? 3u
                                                                            : 0u;
  detail::put_u32_le(bytes, mode_code);
  detail::put_u32_le(bytes, layer.has_bias() ? 1u : 0u);
  detail::put_u32_le(bytes, static_cast<std::uint32_t>(layer.group_size()));
  detail::put_u64_le(bytes, layer.packed_weights_size());
  if (layer.has_bias()) {
    for (std::size_t j = 0; j < out; ++j) detail::put_f32_le(bytes, layer.bias()[j]);
  }
  for (float scale : scales) detail::put_f32_le(bytes, scale);
  const std::vector<std::uint8_t> packed = layer.packed_weights();
  const std::size_t weights_at = bytes.size();
  bytes.resize(weights_at + packed.size());
  std::memcpy(bytes.data() + weights_at, packed.data(), packed.size());
  detail::put_u32_le(bytes, detail::crc32_update(0, bytes.data(), bytes.size()));
  return bytes;
}

// Writes the layer to `out`. Throws std::runtime_error if the stream fails.
template <class Format>
void save(const GroupedLinear<Format>& layer, std::ostream& out) {
  const std::vector<unsigned char> bytes = save_to_bytes(layer);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) detail::fail_runtime_error("bitlinear: save: the output stream failed while writing the layer");
}

// Writes the layer to `out`. Throws std::runtime_error if the stream fails.
template <class Format>
void save(const BitLinear<Format>& layer, std::ostream& out) {
  const std::vector<unsigned char> bytes = save_to_bytes(layer);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) detail::fail_runtime_error("bitlinear: save: the output stream failed while writing the layer");
}

namespace detail {
// The header of exactly `size` bytes holding one saved layer of `kind`, with size and checksum verified.
inline SavedLayerInfo check_saved_layer(const void* data, std::size_t size, SavedKind kind) {
  const SavedLayerInfo info = read_saved_layer_header(data, size);
  if (info.kind != kind) {
    throw_bad_file(std::string("holds a ") + saved_kind_name(info.kind) + " layer, but a " + saved_kind_name(kind) +
                   " layer was requested");
  }
  if (size < info.total_bytes) {
    throw_bad_file("truncated: " + std::to_string(size) + " bytes, but the header describes " +
                   std::to_string(info.total_bytes));
  }
  if (size > info.total_bytes) {
    throw_bad_file("size mismatch: " + std::to_string(size) + " bytes, but the header describes " +
                   std::to_string(info.total_bytes) + " (trailing bytes)");
  }
  const auto* p = static_cast<const unsigned char*>(data);
  const std::size_t crc_at = info.total_bytes - saved_layer_checksum_bytes;
  const std::uint32_t stored_crc = read_u32_le(p + crc_at);
  const std::uint32_t actual_crc = crc32_update(0, p, crc_at);
  if (stored_crc != actual_crc) {
    throw_bad_file("checksum mismatch (stored CRC-32 " + std::to_string(stored_crc) + ", computed " +
                   std::to_string(actual_crc) + "): the bytes are corrupt");
  }
  return info;
}
}  // namespace detail

// Loads a layer from exactly `size` bytes at `data` (one saved layer, nothing after it). The file's kind must
// be Format's. `isa` picks the kernel family of the loaded layer (not part of the file). Throws
// std::invalid_argument on any malformed, truncated, oversized or corrupt input.
template <class Format>
BitLinear<Format> load(const void* data, std::size_t size, Isa isa = Isa::automatic) {
  const SavedLayerInfo info = detail::check_saved_layer(data, size, detail::saved_kind_of<Format>());
  const auto* p = static_cast<const unsigned char*>(data);
  std::vector<float> bias;
  const unsigned char* cursor = p + saved_layer_header_bytes;
  if (info.has_bias) {
    bias.resize(info.out_features);
    for (std::size_t j = 0; j < info.out_features; ++j, cursor += 4) bias[j] = detail::read_f32_le(cursor);
  }
  Options options;
  options.activation_scale = info.activation_scale;
  options.isa = isa;
  // from_packed validates the weight scale, every bias value and every packed field (canonical form).
  return BitLinear<Format>::from_packed(cursor, info.packed_bytes, info.out_features, info.in_features,
                                        info.weight_scale, info.has_bias ? bias.data() : nullptr, options);
}

// Loads a grouped layer from exactly `size` bytes at `data` (kinds 4-6; the kind must be Format's). Validates
// like load(): every header field, the checksum, then group size, scales, bias and packed codes through
// GroupedLinear::from_packed. Throws std::invalid_argument.
template <class Format>
GroupedLinear<Format> load_grouped(const void* data, std::size_t size, Isa isa = Isa::automatic) {
  const SavedLayerInfo info = detail::check_saved_layer(data, size, detail::saved_grouped_kind_of<Format>());
  const auto* p = static_cast<const unsigned char*>(data);
  const unsigned char* cursor = p + saved_layer_header_bytes;
  std::vector<float> bias;
  if (info.has_bias) {
    bias.resize(info.out_features);
    for (std::size_t j = 0; j < info.out_features; ++j, cursor += 4) bias[j] = detail::read_f32_le(cursor);
  }
  std::vector<float> scales(info.scale_count);
  for (std::size_t i = 0; i < info.scale_count; ++i, cursor += 4) scales[i] = detail::read_f32_le(cursor);
  Options options;
  options.activation_scale = info.activation_scale;
  options.isa = isa;
  return GroupedLinear<Format>::from_packed(cursor, info.packed_bytes, info.out_features, info.in_features,
                                            info.group_size, scales.data(), scales.size(),
                                            info.has_bias ? bias.data() : nullptr, options);
}

namespace detail {
// Reads one saved layer's bytes from a stream, consuming exactly them (several layers may follow each other in
// one stream), in chunks of at most 1 MiB, so memory grows only with bytes actually present.
inline std::vector<unsigned char> read_saved_layer_bytes(std::istream& in) {
  std::vector<unsigned char> bytes(saved_layer_header_bytes);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  const auto got_header = static_cast<std::size_t>(in.gcount());
  if (got_header < saved_layer_header_bytes) {
    if (got_header == 0) throw_bad_file("truncated: the stream is empty");
    bytes.resize(got_header);
    (void)read_saved_layer_header(bytes.data(), bytes.size());  // throws "wrong magic" or "truncated"
  }
  const SavedLayerInfo info = read_saved_layer_header(bytes.data(), bytes.size());
  constexpr std::size_t chunk = std::size_t{1} << 20;
  while (bytes.size() < info.total_bytes) {
    const std::size_t want = info.total_bytes - bytes.size() < chunk ? info.total_bytes - bytes.size() : chunk;
    const std::size_t old_size = bytes.size();
    bytes.resize(old_size + want);
    in.read(reinterpret_cast<char*>(bytes.data() + old_size), static_cast<std::streamsize>(want));
    const auto got = static_cast<std::size_t>(in.gcount());
    if (got < want) {
      throw_bad_file("truncated: the stream ended after " + std::to_string(old_size + got) +
                     " bytes, but the header describes " + std::to_string(info.total_bytes));
    }
  }
  return bytes;
}
}  // namespace detail

// Loads one saved layer from a stream, consuming exactly its bytes (several layers may follow each other in one
// stream). Reads the payload in chunks of at most 1 MiB, so memory grows only with bytes actually present.
template <class Format>
BitLinear<Format> load(std::istream& in, Isa isa = Isa::automatic) {
  const std::vector<unsigned char> bytes = detail::read_saved_layer_bytes(in);
  return load<Format>(bytes.data(), bytes.size(), isa);
}

// load_grouped from a stream (as load above).
template <class Format>
GroupedLinear<Format> load_grouped(std::istream& in, Isa isa = Isa::automatic) {
  const std::vector<unsigned char> bytes = detail::read_saved_layer_bytes(in);
  return load_grouped<Format>(bytes.data(), bytes.size(), isa);
}

BITLINEAR_NAMESPACE_END
