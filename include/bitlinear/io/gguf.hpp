// bitlinear: a reader for GGUF files (the container of ggml / llama.cpp / bitnet.cpp models), hardened against
// hostile files. It reads the container only; gguf_import.hpp builds layers from its tensors.
//
// Layout (ggml-org/ggml docs/gguf.md), all little-endian:
//   "GGUF", u32 version (2 or 3), u64 tensor count, u64 key/value count,
//   key/values:   string key (u64 length + bytes), u32 value type, value,
//   tensor infos: string name, u32 n_dims (<= 4), u64 ne[n_dims] (ne[0] is the contiguous dimension),
//                 u32 type id, u64 offset (from the start of the data section),
//   padding up to the data section, which starts at the end of the tensor infos rounded up to
//   general.alignment (a u32, default 32).
// The 13 value types are u8, i8, u16, i16, u32, i32, f32, bool, string, array, u64, i64, f64 (ids 0-12); an
// array is u32 element type + u64 count + elements, and may hold arrays (nested at most max_array_depth deep).
//
// Rules enforced (each refusal is a std::invalid_argument naming the field and the rule): magic; version 2 or 3
// (version 1 used 32-bit counts; a byte-swapped version means a big-endian file, which is refused); every count
// and length is checked against the bytes left before anything is allocated for it (so nothing is allocated
// beyond a small multiple of the header's size); value and element types 0-12; bools 0 or 1; duplicate keys and
// duplicate tensor names; general.alignment a u32 power of two in [1, 2^20]; n_dims <= 4; every ne[i] and the
// element count below 2^63; ne[0] a multiple of a block type's block size; offsets multiples of the alignment;
// every tensor's bytes [offset, offset + size) inside the data section; overlapping tensors. All steps are
// linear in the header bytes except the duplicate and overlap checks, which sort: O(n log n).
//
// Tensor types: the byte size of every ggml type with a fixed block layout is known (gguf_type_info). Type ids
// whose meaning depends on who wrote the file are resolved here: id 36 is I2_S in files of bitnet.cpp
// (general.architecture "bitnet" or "bitnet-b1.58", or general.file_type 40 = bitnet.cpp's MOSTLY_I2_S; its span
// up to the next tensor must then be its size plus less than the alignment of padding) and an unknown type otherwise (upstream ggml gave 36 to a repacked type it no longer writes). A tensor of unknown
// type is still listed, with size_known == false and size_bytes the span up to the next tensor's offset (or the
// end of the data section): a raw view that the caller may use, but whose exact size the file does not state.
//
// Id 42 is upstream ggml's Q2_0 (64 weights per 18-byte block) and, in legacy PrismML files, Q2_0 with 128 weights
// per 34-byte block (GgufType::q2_0_g128). A type-42 tensor whose ne[0] is a multiple of 128 (and that has weights)
// could be either: its span up to the next tensor's offset (or the end of the data section) decides. A reading fits
// when its size is at most the span and the span exceeds it by less than the alignment (writers pad each tensor to
// the alignment, nothing more). Exactly one reading fits: the tensor has that type; both or neither: the file is
// refused, naming the tensor, both sizes and the span (the two sizes differ by element count / 64 bytes, so only
// tensors below 64 x alignment weights can fit both). A type-42 tensor with ne[0] not a multiple of 128 is Q2_0.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <istream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../detail/quoted.hpp"
#include "../error.hpp"
#include "mapped_file.hpp"
#include "safetensors.hpp"  // FileAccess

BITLINEAR_NAMESPACE_BEGIN

// The 13 metadata value types, by their ids in the file.
enum class GgufValueType : std::uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9, u64 = 10,
  i64 = 11, f64 = 12,
};

// Tensor type ids (ggml's GGML_TYPE_*), as far as this reader knows their byte sizes. i2_s is bitnet.cpp's id 36
// (see the header comment for when a file's 36 means it); unknown stands for every id without a known layout.
enum class GgufType : std::uint32_t {
  f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9, q2_k = 10, q3_k = 11, q4_k = 12,
  q5_k = 13, q6_k = 14, q8_k = 15, iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21,
  iq2_s = 22, iq4_xs = 23, i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30, tq1_0 = 34,
  tq2_0 = 35, i2_s = 36, mxfp4 = 39, q1_0 = 41, q2_0 = 42, pq2_0 = 142, ptq1_0 = 143,
  // Legacy PrismML Q2_0: stored as id 42 like upstream's Q2_0, but 128 weights per 34-byte block. No file stores
  // this value; the reader resolves a type-42 tensor to it by its size (see the header comment).
  q2_0_g128 = 0x8000002Au,
  unknown = 0xFFFFFFFFu,
};

// Block size (weights) and bytes per block of a tensor type; {0, 0} for unknown and for i2_s (whose size is
// whole-tensor: element count / 4 + 32 bytes).
struct GgufTypeInfo {
  const char* name;
  std::uint32_t block_size;
  std::uint32_t block_bytes;
};

inline GgufTypeInfo gguf_type_info(GgufType type) noexcept {
  switch (type) {
    case GgufType::f32: return {"F32", 1, 4};
    case GgufType::f16: return {"F16", 1, 2};
    case GgufType::q4_0: return {"Q4_0", 32, 18};
    case GgufType::q4_1: return {"Q4_1", 32, 20};
    case GgufType::q5_0: return {"Q5_0", 32, 22};
    case GgufType::q5_1: return {"Q5_1", 32, 24};
    case GgufType::q8_0: return {"Q8_0", 32, 34};
    case GgufType::q8_1: return {"Q8_1", 32, 36};
    case GgufType::q2_k: return {"Q2_K", 256, 84};
    case GgufType::q3_k: return {"Q3_K", 256, 110};
    case GgufType::q4_k: return {"Q4_K", 256, 144};
    case GgufType::q5_k: return {"Q5_K", 256, 176};
    case GgufType::q6_k: return {"Q6_K", 256, 210};
    case GgufType::q8_k: return {"Q8_K", 256, 292};
    case GgufType::iq2_xxs: return {"IQ2_XXS", 256, 66};
    case GgufType::iq2_xs: return {"IQ2_XS", 256, 74};
    case GgufType::iq3_xxs: return {"IQ3_XXS", 256, 98};
    case GgufType::iq1_s: return {"IQ1_S", 256, 50};
    case GgufType::iq4_nl: return {"IQ4_NL", 32, 18};
    case GgufType::iq3_s: return {"IQ3_S", 256, 110};
    case GgufType::iq2_s: return {"IQ2_S", 256, 82};
    case GgufType::iq4_xs: return {"IQ4_XS", 256, 136};
    case GgufType::i8: return {"I8", 1, 1};
    case GgufType::i16: return {"I16", 1, 2};
    case GgufType::i32: return {"I32", 1, 4};
    case GgufType::i64: return {"I64", 1, 8};
    case GgufType::f64: return {"F64", 1, 8};
    case GgufType::iq1_m: return {"IQ1_M", 256, 56};
    case GgufType::bf16: return {"BF16", 1, 2};
    case GgufType::tq1_0: return {"TQ1_0", 256, 54};
    case GgufType::tq2_0: return {"TQ2_0", 256, 66};
    case GgufType::i2_s: return {"I2_S", 0, 0};
    case GgufType::mxfp4: return {"MXFP4", 32, 17};
    // Upstream ggml's 2026 types, and PrismML's fork's group-128 ternary types (its ggml-common.h: block_pq2_0
    // {d, qs[32]}, block_ptq1_0 {qs[24], qh[2], d}); id 42 is resolved to q2_0 or q2_0_g128 by size.
    case GgufType::q1_0: return {"Q1_0", 128, 18};
    case GgufType::q2_0: return {"Q2_0", 64, 18};
    case GgufType::pq2_0: return {"PQ2_0", 128, 34};
    case GgufType::ptq1_0: return {"PTQ1_0", 128, 28};
    case GgufType::q2_0_g128: return {"Q2_0_g128", 128, 34};
    case GgufType::unknown: break;
  }
  return {"unknown", 0, 0};
}

class GgufValue;

// An array value: its element type and count, over the validated header bytes.
class GgufArray {
 public:
  GgufValueType element_type() const noexcept { return type_; }
  std::uint64_t size() const noexcept { return count_; }
  // Element i of an array of fixed-size elements (numbers and bools), O(1). Throws std::invalid_argument for an
  // index out of range or an array of strings or arrays (use elements()).
  GgufValue operator[](std::uint64_t i) const;
  // Every element, in order (strings and arrays too): O(size).
  std::vector<GgufValue> elements() const;

 private:
  friend class GgufValue;
  friend class GgufParser;
  GgufValueType type_ = GgufValueType::u8;
  std::uint64_t count_ = 0;
  const std::uint8_t* data_ = nullptr;  // the first element
};

namespace detail {

[[noreturn]] inline void throw_bad_gguf(const std::string& message) {
  detail::fail_invalid_argument("bitlinear: gguf: " + message);
}

inline std::uint64_t gguf_le(const std::uint8_t* p, unsigned bytes) noexcept {
  std::uint64_t v = 0;
  for (unsigned i = bytes; i-- > 0;) v = v << 8 | p[i];
  return v;
}

// Bytes of one value of a fixed-size type; 0 for string and array; 0 for an id outside 0-12 too.
inline std::size_t gguf_fixed_size(GgufValueType t) noexcept {
  switch (t) {
    case GgufValueType::u8: case GgufValueType::i8: case GgufValueType::boolean: return 1;
    case GgufValueType::u16: case GgufValueType::i16: return 2;
    case GgufValueType::u32: case GgufValueType::i32: case GgufValueType::f32: return 4;
    case GgufValueType::u64: case GgufValueType::i64: case GgufValueType::f64: return 8;
    case GgufValueType::string: case GgufValueType::array: return 0;
  }
  return 0;
}

inline const char* gguf_value_type_name(GgufValueType t) noexcept {
  static constexpr const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string",
                                          "array", "u64", "i64", "f64"};
  const auto i = static_cast<std::uint32_t>(t);
  return i < 13 ? names[i] : "invalid";
}

// Skips one validated value of type t at p and returns the byte after it.
inline const std::uint8_t* gguf_skip_value(GgufValueType t, const std::uint8_t* p) noexcept {
  if (t == GgufValueType::string) return p + 8 + gguf_le(p, 8);
  if (t != GgufValueType::array) return p + gguf_fixed_size(t);
  const auto et = static_cast<GgufValueType>(gguf_le(p, 4));
  const std::uint64_t n = gguf_le(p + 4, 8);
  p += 12;
  const std::size_t fixed = gguf_fixed_size(et);
  if (fixed != 0) return p + n * fixed;  // validated: fits in the header
  for (std::uint64_t i = 0; i < n; ++i) p = gguf_skip_value(et, p);
  return p;
}

}  // namespace detail

// One metadata value (a view into the header bytes: valid as long as they are).
class GgufValue {
 public:
  GgufValueType type() const noexcept { return type_; }
  const char* type_name() const noexcept { return detail::gguf_value_type_name(type_); }

  bool is_integer() const noexcept {
    switch (type_) {
      case GgufValueType::u8: case GgufValueType::i8: case GgufValueType::u16: case GgufValueType::i16:
      case GgufValueType::u32: case GgufValueType::i32: case GgufValueType::u64: case GgufValueType::i64: return true;
      default: return false;
    }
  }
  // An integer value of any of the 8 integer types, as a non-negative 64-bit number; nothing if negative or
  // not an integer.
  std::optional<std::uint64_t> as_uint() const noexcept {
    const std::uint64_t raw = detail::gguf_le(p_, static_cast<unsigned>(detail::gguf_fixed_size(type_)));
    switch (type_) {
      case GgufValueType::u8: case GgufValueType::u16: case GgufValueType::u32: case GgufValueType::u64: return raw;
      case GgufValueType::i8: if (raw & 0x80u) return std::nullopt; return raw;
      case GgufValueType::i16: if (raw & 0x8000u) return std::nullopt; return raw;
      case GgufValueType::i32: if (raw & 0x80000000u) return std::nullopt; return raw;
      case GgufValueType::i64: if (raw >> 63) return std::nullopt; return raw;
      default: return std::nullopt;
    }
  }
  // An integer value as a signed 64-bit number; nothing if it does not fit or is not an integer.
  std::optional<std::int64_t> as_int() const noexcept {
    const std::uint64_t raw = detail::gguf_le(p_, static_cast<unsigned>(detail::gguf_fixed_size(type_)));
    switch (type_) {
      case GgufValueType::i8: return static_cast<std::int8_t>(static_cast<std::uint8_t>(raw));
      case GgufValueType::i16: return static_cast<std::int16_t>(static_cast<std::uint16_t>(raw));
      case GgufValueType::i32: return static_cast<std::int32_t>(static_cast<std::uint32_t>(raw));
      case GgufValueType::i64: {
        std::int64_t v = 0;
        std::memcpy(&v, &raw, 8);
        return v;
      }
      case GgufValueType::u64: if (raw >> 63) return std::nullopt; return static_cast<std::int64_t>(raw);
      case GgufValueType::u8: case GgufValueType::u16: case GgufValueType::u32: return static_cast<std::int64_t>(raw);
      default: return std::nullopt;
    }
  }
  // An f32 or f64 value as a double (f32 converts exactly); nothing for other types.
  std::optional<double> as_double() const noexcept {
    if (type_ == GgufValueType::f32) {
      const auto bits = static_cast<std::uint32_t>(detail::gguf_le(p_, 4));
      float f = 0.0f;
      std::memcpy(&f, &bits, 4);
      return static_cast<double>(f);
    }
    if (type_ == GgufValueType::f64) {
      const std::uint64_t bits = detail::gguf_le(p_, 8);
      double d = 0.0;
      std::memcpy(&d, &bits, 8);
      return d;
    }
    return std::nullopt;
  }
  std::optional<bool> as_bool() const noexcept {
    if (type_ != GgufValueType::boolean) return std::nullopt;
    return *p_ != 0;
  }
  std::optional<std::string_view> as_string() const noexcept {
    if (type_ != GgufValueType::string) return std::nullopt;
    return std::string_view(reinterpret_cast<const char*>(p_ + 8), static_cast<std::size_t>(detail::gguf_le(p_, 8)));
  }
  std::optional<GgufArray> as_array() const noexcept {
    if (type_ != GgufValueType::array) return std::nullopt;
    GgufArray a;
    a.type_ = static_cast<GgufValueType>(detail::gguf_le(p_, 4));
    a.count_ = detail::gguf_le(p_ + 4, 8);
    a.data_ = p_ + 12;
    return a;
  }

 private:
  friend class GgufArray;
  friend class GgufParser;
  GgufValue(GgufValueType type, const std::uint8_t* p) noexcept : type_(type), p_(p) {}
  GgufValueType type_ = GgufValueType::u8;
  const std::uint8_t* p_ = nullptr;  // the value's bytes (strings and arrays: from their length / element type)
};

inline GgufValue GgufArray::operator[](std::uint64_t i) const {
  const std::size_t fixed = detail::gguf_fixed_size(type_);
  if (fixed == 0) {
    detail::throw_bad_gguf(std::string("indexing an array of ") + detail::gguf_value_type_name(type_) +
                           " (only arrays of numbers and bools index in O(1); use elements())");
  }
  if (i >= count_) {
    detail::throw_bad_gguf("array index " + std::to_string(i) + " out of range (size " + std::to_string(count_) + ")");
  }
  return GgufValue(type_, data_ + i * fixed);
}

inline std::vector<GgufValue> GgufArray::elements() const {
  std::vector<GgufValue> out;
  out.reserve(static_cast<std::size_t>(count_));  // validated: each element took at least one header byte
  const std::uint8_t* p = data_;
  for (std::uint64_t i = 0; i < count_; ++i) {
    out.push_back(GgufValue(type_, p));
    p = detail::gguf_skip_value(type_, p);
  }
  return out;
}

struct GgufKeyValue {
  std::string_view key;  // into the header bytes
  GgufValue value;
};

// One tensor: its info and a view of its bytes in the data section.
struct GgufTensor {
  std::string name;
  std::uint32_t type_id = 0;               // as stored
  GgufType type = GgufType::unknown;       // resolved (see the header comment); unknown if not known
  std::uint32_t n_dims = 0;
  std::array<std::uint64_t, 4> ne{{1, 1, 1, 1}};  // ne[0] contiguous; unused dimensions are 1
  std::uint64_t offset = 0;                // from the start of the data section
  std::uint64_t size_bytes = 0;            // exact if size_known; otherwise the span to the next tensor
  bool size_known = false;
  const std::uint8_t* data = nullptr;

  std::uint64_t element_count() const noexcept { return ne[0] * ne[1] * ne[2] * ne[3]; }  // checked < 2^63
  const char* type_name() const noexcept { return gguf_type_info(type).name; }
};

namespace detail {

// The parsed header, with pointers into the bytes it was parsed from.
struct GgufHeader {
  std::uint32_t version = 0;
  std::uint32_t alignment = 32;
  std::uint64_t data_offset = 0;  // from the start of the file
  std::uint64_t data_size = 0;    // file size - data_offset (0 without tensors and data)
  std::vector<GgufKeyValue> kvs;  // file order
  std::vector<std::size_t> kv_by_key;
  std::vector<GgufTensor> tensors;  // file order
  std::vector<std::size_t> tensor_by_name;
  std::vector<std::size_t> type42;  // tensors of id 42 that either Q2_0 layout could hold (resolved by size)
};

}  // namespace detail

// The parser itself (one pass over the bytes; see the header comment for the rules).
class GgufParser {
 public:
  static constexpr int max_array_depth = 8;
  static constexpr std::uint32_t max_alignment = std::uint32_t{1} << 20;
  static constexpr std::uint32_t default_alignment = 32;

  static detail::GgufHeader parse(const std::uint8_t* bytes, std::size_t size) {
    GgufParser p(bytes, size);
    return p.run();
  }

 private:
  GgufParser(const std::uint8_t* bytes, std::size_t size) noexcept : begin_(bytes), p_(bytes), end_(bytes + size) {}

  std::uint64_t left() const noexcept { return static_cast<std::uint64_t>(end_ - p_); }
  std::uint64_t at() const noexcept { return static_cast<std::uint64_t>(p_ - begin_); }

  void need(std::uint64_t n, const std::string& what) const {
    if (n > left()) {
      detail::throw_bad_gguf("truncated: " + what + " at byte " + std::to_string(at()) + " needs " +
                             std::to_string(n) + " bytes, " + std::to_string(left()) + " left");
    }
  }
  std::uint64_t read(unsigned bytes, const std::string& what) {
    need(bytes, what);
    const std::uint64_t v = detail::gguf_le(p_, bytes);
    p_ += bytes;
    return v;
  }
  // A string: u64 length, then that many bytes (checked against what is left before anything is read).
  std::string_view read_string(const std::string& what) {
    const std::uint64_t n = read(8, what + " length");
    if (n > left()) {
      detail::throw_bad_gguf("truncated: " + what + " at byte " + std::to_string(at()) + " has length " +
                             std::to_string(n) + ", " + std::to_string(left()) + " bytes left");
    }
    const std::string_view s(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n));
    p_ += n;
    return s;
  }
  GgufValueType read_type(const std::string& what) {
    const std::uint64_t t = read(4, what);
    if (t > 12) {
      detail::throw_bad_gguf(what + " is " + std::to_string(t) + "; the 13 GGUF value types are 0-12");
    }
    return static_cast<GgufValueType>(t);
  }

  // Validates one value of type t (at depth `depth` of array nesting) and steps over it.
  void skip_value(GgufValueType t, int depth, const std::string& where) {
    if (t == GgufValueType::string) {
      (void)read_string(where + ": string");
      return;
    }
    if (t == GgufValueType::boolean) {
      const std::uint64_t b = read(1, where + ": bool");
      if (b > 1) detail::throw_bad_gguf(where + ": bool value " + std::to_string(b) + " (must be 0 or 1)");
      return;
    }
    if (t != GgufValueType::array) {
      const std::size_t n = detail::gguf_fixed_size(t);
      need(n, where + ": " + detail::gguf_value_type_name(t));
      p_ += n;
      return;
    }
    if (depth >= max_array_depth) {
      detail::throw_bad_gguf(where + ": arrays nested deeper than " + std::to_string(max_array_depth) + " levels");
    }
    const GgufValueType et = read_type(where + ": array element type");
    const std::uint64_t count = read(8, where + ": array count");
    // Every element takes at least this many bytes: a count the bytes left cannot hold is refused up front.
    const std::size_t fixed = detail::gguf_fixed_size(et);
    const std::uint64_t min_bytes = fixed != 0 ? fixed : et == GgufValueType::string ? 8 : 12;
    if (count > left() / min_bytes) {
      detail::throw_bad_gguf(where + ": array of " + std::to_string(count) + " " + detail::gguf_value_type_name(et) +
                             " needs at least " + std::to_string(min_bytes) + " bytes each, " +
                             std::to_string(left()) + " bytes left");
    }
    if (fixed != 0 && et != GgufValueType::boolean) {
      p_ += count * fixed;
      return;
    }
    // Strings and bools in a loop of their own: messages are built only on failure (tokenizer arrays hold
    // hundreds of thousands of strings).
    if (et == GgufValueType::string) {
      for (std::uint64_t i = 0; i < count; ++i) {
        const std::uint64_t n = left() >= 8 ? detail::gguf_le(p_, 8) : 0;
        if (left() < 8 || n > left() - 8) {
          detail::throw_bad_gguf("truncated: " + where + "[" + std::to_string(i) + "]: string at byte " +
                                 std::to_string(at()) + (left() < 8 ? " has no 8-byte length" : " has length " +
                                 std::to_string(n) + ", " + std::to_string(left() - 8) + " bytes left"));
        }
        p_ += 8 + n;
      }
      return;
    }
    if (et == GgufValueType::boolean) {
      for (std::uint64_t i = 0; i < count; ++i, ++p_) {  // count <= left(): checked above
        if (*p_ > 1) {
          detail::throw_bad_gguf(where + "[" + std::to_string(i) + "]: bool value " + std::to_string(*p_) +
                                 " (must be 0 or 1)");
        }
      }
      return;
    }
    for (std::uint64_t i = 0; i < count; ++i) skip_value(et, depth + 1, where + "[" + std::to_string(i) + "]");
  }

  detail::GgufHeader run() {
    detail::GgufHeader h;
    need(4, "magic");
    if (std::memcmp(p_, "GGUF", 4) != 0) detail::throw_bad_gguf("magic is not \"GGUF\" (not a GGUF file)");
    p_ += 4;
    const auto version = static_cast<std::uint32_t>(read(4, "version"));
    if (version == 0x02000000u || version == 0x03000000u) {
      detail::throw_bad_gguf("version is byte-swapped: a big-endian GGUF file; only little-endian files are read");
    }
    if (version != 2 && version != 3) {
      detail::throw_bad_gguf("version " + std::to_string(version) + " is not supported (versions 2 and 3 are" +
                             (version == 1 ? "; version 1 used 32-bit counts)" : ")"));
    }
    h.version = version;
    const std::uint64_t tensor_count = read(8, "tensor count");
    const std::uint64_t kv_count = read(8, "key/value count");
    // Minimum bytes: a key/value 8 + 4 + 1, a tensor info 8 + 4 + 4 + 8.
    if (kv_count > left() / 13) {
      detail::throw_bad_gguf("key/value count " + std::to_string(kv_count) + " cannot fit in the " +
                             std::to_string(left()) + " bytes left (at least 13 bytes each)");
    }
    if (tensor_count > left() / 24) {
      detail::throw_bad_gguf("tensor count " + std::to_string(tensor_count) + " cannot fit in the " +
                             std::to_string(left()) + " bytes left (at least 24 bytes each)");
    }

    for (std::uint64_t i = 0; i < kv_count; ++i) {
      const std::string where = "key/value " + std::to_string(i);
      const std::string_view key = read_string(where + " key");
      const std::string named = where + " " + quoted(key);
      const GgufValueType t = read_type(named + ": value type");
      const std::uint8_t* value_start = p_;
      skip_value(t, 0, named);
      h.kvs.push_back({key, GgufValue(t, value_start)});
    }
    h.kv_by_key = sorted_index(h.kvs, [](const GgufKeyValue& kv) { return kv.key; }, "metadata key");

    std::optional<std::string_view> architecture;
    std::optional<std::uint64_t> file_type;
    for (const GgufKeyValue& kv : h.kvs) {
      if (kv.key == "general.alignment") {
        if (kv.value.type() != GgufValueType::u32) {
          detail::throw_bad_gguf(std::string("general.alignment has type ") + kv.value.type_name() + "; it must be u32");
        }
        const auto a = static_cast<std::uint32_t>(*kv.value.as_uint());
        if (a == 0 || (a & (a - 1)) != 0 || a > max_alignment) {
          detail::throw_bad_gguf("general.alignment " + std::to_string(a) +
                                 " must be a power of two between 1 and 1048576");
        }
        h.alignment = a;
      } else if (kv.key == "general.architecture") {
        architecture = kv.value.as_string();
      } else if (kv.key == "general.file_type") {
        file_type = kv.value.as_uint();
      }
    }
    const bool bitnet_cpp = (architecture && (*architecture == "bitnet" || *architecture == "bitnet-b1.58")) ||
                            (file_type && *file_type == 40);

    for (std::uint64_t i = 0; i < tensor_count; ++i) {
      const std::string where = "tensor info " + std::to_string(i);
      GgufTensor t;
      t.name = std::string(read_string(where + " name"));
      const std::string named = where + " " + quoted(t.name);
      t.n_dims = static_cast<std::uint32_t>(read(4, named + ": n_dims"));
      if (t.n_dims > 4) detail::throw_bad_gguf(named + ": n_dims " + std::to_string(t.n_dims) + " (at most 4)");
      std::uint64_t elements = 1;
      bool empty = false;
      for (std::uint32_t d = 0; d < t.n_dims; ++d) {
        const std::uint64_t n = read(8, named + ": ne[" + std::to_string(d) + "]");
        if (n >> 63) detail::throw_bad_gguf(named + ": ne[" + std::to_string(d) + "] = " + std::to_string(n) + " is not below 2^63");
        t.ne[d] = n;
        if (n == 0) empty = true;
        else if (!empty && elements > (std::numeric_limits<std::uint64_t>::max() >> 1) / n) {
          detail::throw_bad_gguf(named + ": the element count (product of ne) is not below 2^63");
        }
        if (!empty) elements *= n;
      }
      if (empty) elements = 0;
      t.type_id = static_cast<std::uint32_t>(read(4, named + ": type"));
      t.offset = read(8, named + ": offset");
      if (t.offset % h.alignment != 0) {
        detail::throw_bad_gguf(named + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                               std::to_string(h.alignment));
      }
      t.type = resolve_type(t.type_id, bitnet_cpp);
      const GgufTypeInfo info = gguf_type_info(t.type);
      if (t.type == GgufType::i2_s) {
        if (elements % 4 != 0) {
          detail::throw_bad_gguf(named + ": I2_S (type 36 in a bitnet.cpp file) needs a multiple of 4 elements, not " +
                                 std::to_string(elements));
        }
        t.size_bytes = elements / 4 + 32;
        t.size_known = true;
      } else if (info.block_size != 0) {
        if (t.ne[0] % info.block_size != 0) {
          detail::throw_bad_gguf(named + ": ne[0] = " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                                 info.name + " block size " + std::to_string(info.block_size));
        }
        const std::uint64_t blocks = elements / info.block_size;
        if (blocks > (std::numeric_limits<std::uint64_t>::max() >> 1) / info.block_bytes) {
          detail::throw_bad_gguf(named + ": the byte size is not below 2^63");
        }
        t.size_bytes = blocks * info.block_bytes;
        t.size_known = true;
        if (t.type == GgufType::q2_0 && elements != 0 && t.ne[0] % 128 == 0) h.type42.push_back(h.tensors.size());
      }
      h.tensors.push_back(std::move(t));
    }
    h.tensor_by_name = sorted_index(h.tensors, [](const GgufTensor& t) { return std::string_view(t.name); }, "tensor name");

    // The data section: the end of the tensor infos, rounded up to the alignment.
    const std::uint64_t header_end = at();
    const std::uint64_t size = static_cast<std::uint64_t>(end_ - begin_);
    const std::uint64_t rounded = (header_end + h.alignment - 1) / h.alignment * h.alignment;
    if (rounded > size) {
      if (!h.tensors.empty()) {
        detail::throw_bad_gguf("truncated: the data section starts at byte " + std::to_string(rounded) +
                               " (the header end " + std::to_string(header_end) + " rounded up to the alignment " +
                               std::to_string(h.alignment) + "), past the end of the " + std::to_string(size) +
                               "-byte file");
      }
      h.data_offset = size;
    } else {
      h.data_offset = rounded;
    }
    h.data_size = size - h.data_offset;
    place_tensors(h);
    return h;
  }

  static GgufType resolve_type(std::uint32_t id, bool bitnet_cpp) noexcept {
    if (id == 36) return bitnet_cpp ? GgufType::i2_s : GgufType::unknown;
    if (id == static_cast<std::uint32_t>(GgufType::q2_0_g128)) return GgufType::unknown;  // never a stored id
    const auto t = static_cast<GgufType>(id);
    if (id != 0xFFFFFFFFu && gguf_type_info(t).block_size != 0) return t;
    return GgufType::unknown;
  }

  // A type-42 tensor that either Q2_0 layout could hold, given its span up to the next tensor (or the end of the
  // data): upstream's Q2_0 (its size_bytes so far) or PrismML's legacy 128-weight Q2_0 (see the header comment).
  static void resolve_type42(GgufTensor& t, std::uint64_t span, std::uint32_t alignment) {
    const std::uint64_t g64 = t.size_bytes;  // element count / 64 * 18, checked below 2^63
    const std::uint64_t g128 = t.element_count() / 128 * 34;
    const auto fits = [&](std::uint64_t size) { return size <= span && span - size < alignment; };
    const bool upstream = fits(g64), legacy = fits(g128);
    if (upstream != legacy) {
      if (legacy) {
        t.type = GgufType::q2_0_g128;
        t.size_bytes = g128;
      }
      return;
    }
    detail::throw_bad_gguf("tensor " + quoted(t.name) + " (type 42): upstream Q2_0 (64 weights per 18-byte block) " +
                           "needs " + std::to_string(g64) + " bytes, PrismML's legacy Q2_0 (128 weights per 34-byte " +
                           "block) needs " + std::to_string(g128) + " bytes, and " + std::to_string(span) +
                           " bytes lie before the next tensor (or the end of the data): " +
                           (upstream ? "both fit" : "neither fits") +
                           " (a reading fits when the span exceeds its size by less than the alignment " +
                           std::to_string(alignment) + "), so the file's type 42 cannot be told apart");
  }

  // Every tensor inside the data section, no two overlapping; unknown-size tensors get the span up to the next
  // higher offset (or the end of the data).
  static void place_tensors(detail::GgufHeader& h) {
    std::vector<char> type42(h.tensors.size(), 0);
    for (std::size_t i : h.type42) type42[i] = 1;
    std::vector<std::size_t> order(h.tensors.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return h.tensors[a].offset < h.tensors[b].offset; });
    std::uint64_t next_offset = h.data_size;  // smallest offset above the current group
    for (std::size_t k = order.size(); k-- > 0;) {
      GgufTensor& t = h.tensors[order[k]];
      const std::string named = "tensor " + quoted(t.name);
      if (t.offset > h.data_size) {
        detail::throw_bad_gguf(named + ": offset " + std::to_string(t.offset) + " is past the end of the " +
                               std::to_string(h.data_size) + "-byte data section");
      }
      if (type42[order[k]] != 0) resolve_type42(t, next_offset - t.offset, h.alignment);
      if (!t.size_known) {
        t.size_bytes = next_offset - t.offset;
      } else if (t.type == GgufType::i2_s && t.size_bytes <= next_offset - t.offset &&
                 next_offset - t.offset - t.size_bytes >= h.alignment) {
        // Writers pad each tensor to the alignment only: a longer span holds another type's bytes (upstream's id
        // 36 needs 18 bytes per 32 weights, I2_S 8 + a 32-byte tail).
        detail::throw_bad_gguf(named + ": type 36 read as bitnet.cpp's I2_S needs " + std::to_string(t.size_bytes) +
                               " bytes, but " + std::to_string(next_offset - t.offset) +
                               " bytes lie before the next tensor (or the end of the data), more than alignment "
                               "padding: the file's type 36 cannot be told apart");
      } else if (t.size_bytes > h.data_size - t.offset) {
        detail::throw_bad_gguf(named + " (" + t.type_name() + "): bytes [" + std::to_string(t.offset) + ", " +
                               std::to_string(t.offset) + " + " + std::to_string(t.size_bytes) +
                               ") end past the " + std::to_string(h.data_size) + "-byte data section" +
                               (t.type == GgufType::i2_s ? " (type 36 read as bitnet.cpp's I2_S: element count / 4 + 32 bytes)" : ""));
      }
      if (k == 0 || h.tensors[order[k - 1]].offset != t.offset) next_offset = t.offset;
    }
    // Overlap: in offset order (ties: empty tensors first), each non-empty tensor ends before the next begins.
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const GgufTensor& x = h.tensors[a];
      const GgufTensor& y = h.tensors[b];
      return x.offset != y.offset ? x.offset < y.offset : x.size_bytes < y.size_bytes;
    });
    const GgufTensor* previous = nullptr;
    for (std::size_t i : order) {
      const GgufTensor& t = h.tensors[i];
      if (t.size_bytes == 0) continue;
      if (previous != nullptr && previous->offset + previous->size_bytes > t.offset) {
        detail::throw_bad_gguf("tensors " + quoted(previous->name) + " (bytes [" + std::to_string(previous->offset) +
                               ", " + std::to_string(previous->offset + previous->size_bytes) + ")) and " +
                               quoted(t.name) + " (from byte " + std::to_string(t.offset) + ") overlap" +
                               (previous->size_known ? "" : " (the first has a type of unknown size)"));
      }
      previous = &t;
    }
  }

  template <class T, class Key>
  static std::vector<std::size_t> sorted_index(const std::vector<T>& items, Key key, const char* what) {
    std::vector<std::size_t> idx(items.size());
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return key(items[a]) < key(items[b]); });
    for (std::size_t i = 1; i < idx.size(); ++i) {
      if (key(items[idx[i]]) == key(items[idx[i - 1]])) {
        detail::throw_bad_gguf(std::string(what) + " " + quoted(key(items[idx[i]])) + " appears twice");
      }
    }
    return idx;
  }

 public:
  // A name for an error message: quoted, at most 80 bytes, control bytes escaped as \xNN.
  static std::string quoted(std::string_view s) { return detail::quoted(s); }

 private:
  const std::uint8_t* begin_;
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

// A parsed GGUF file over caller-owned bytes (not copied: keep them alive while using the view).
class GgufView {
 public:
  GgufView() = default;

  static GgufView parse(const void* bytes, std::size_t size) {
    if (bytes == nullptr && size != 0) detail::throw_bad_gguf("data is null");
    const auto* p = static_cast<const std::uint8_t*>(bytes);
    GgufView v;
    v.h_ = GgufParser::parse(p, size);
    for (GgufTensor& t : v.h_.tensors) t.data = p + v.h_.data_offset + t.offset;
    return v;
  }

  std::uint32_t version() const noexcept { return h_.version; }
  std::uint32_t alignment() const noexcept { return h_.alignment; }
  std::uint64_t data_offset() const noexcept { return h_.data_offset; }
  std::uint64_t data_size() const noexcept { return h_.data_size; }
  const std::vector<GgufKeyValue>& metadata() const noexcept { return h_.kvs; }
  const std::vector<GgufTensor>& tensors() const noexcept { return h_.tensors; }

  // O(log n) lookups.
  const GgufValue* find_value(std::string_view key) const noexcept {
    const auto& idx = h_.kv_by_key;
    const auto it = std::lower_bound(idx.begin(), idx.end(), key,
                                     [&](std::size_t i, std::string_view k) { return h_.kvs[i].key < k; });
    return it != idx.end() && h_.kvs[*it].key == key ? &h_.kvs[*it].value : nullptr;
  }
  const GgufValue& value(std::string_view key) const {
    const GgufValue* v = find_value(key);
    if (v == nullptr) detail::throw_bad_gguf("no metadata key " + GgufParser::quoted(key));
    return *v;
  }
  const GgufTensor* find(std::string_view name) const noexcept {
    const auto& idx = h_.tensor_by_name;
    const auto it = std::lower_bound(idx.begin(), idx.end(), name,
                                     [&](std::size_t i, std::string_view n) { return std::string_view(h_.tensors[i].name) < n; });
    return it != idx.end() && h_.tensors[*it].name == name ? &h_.tensors[*it] : nullptr;
  }
  const GgufTensor& at(std::string_view name) const {
    const GgufTensor* t = find(name);
    if (t == nullptr) detail::throw_bad_gguf("no tensor named " + GgufParser::quoted(name));
    return *t;
  }

  // Typed metadata accessors: throw std::invalid_argument naming the key if it is missing or has another type.
  // Integers: any of the 8 integer types whose value fits; floats: f32 or f64.
  std::string_view get_string(std::string_view key) const { return typed(key, value(key).as_string(), "a string"); }
  bool get_bool(std::string_view key) const { return typed(key, value(key).as_bool(), "a bool"); }
  GgufArray get_array(std::string_view key) const { return typed(key, value(key).as_array(), "an array"); }
  std::uint64_t get_uint(std::string_view key) const {
    return typed(key, value(key).as_uint(), "a non-negative integer");
  }
  std::int64_t get_int(std::string_view key) const { return typed(key, value(key).as_int(), "an integer fitting 64 bits"); }
  std::uint32_t get_u32(std::string_view key) const {
    const std::uint64_t v = get_uint(key);
    if (v > 0xFFFFFFFFu) {
      detail::throw_bad_gguf("metadata " + GgufParser::quoted(key) + " = " + std::to_string(v) + " does not fit 32 bits");
    }
    return static_cast<std::uint32_t>(v);
  }
  double get_double(std::string_view key) const { return typed(key, value(key).as_double(), "a float (f32 or f64)"); }
  float get_f32(std::string_view key) const {
    const GgufValue& v = value(key);
    if (v.type() != GgufValueType::f32) {
      detail::throw_bad_gguf("metadata " + GgufParser::quoted(key) + " has type " + v.type_name() + "; expected f32");
    }
    return static_cast<float>(*v.as_double());
  }

 private:
  template <class T>
  T typed(std::string_view key, const std::optional<T>& v, const char* expected) const {
    if (!v) {
      detail::throw_bad_gguf("metadata " + GgufParser::quoted(key) + " (type " + value(key).type_name() +
                             ") is not " + expected);
    }
    return *v;
  }

  detail::GgufHeader h_;
};

// A GGUF file, memory-mapped or read into memory, and parsed.
class GgufFile {
 public:
  // Throws std::runtime_error if the file cannot be opened or read, std::invalid_argument if it is malformed or
  // not a regular file. Mapped: opening costs O(header); tensor pages are read when first used.
  static GgufFile open(const std::string& path, FileAccess access = FileAccess::map) {
    detail::require_regular_file(path);
    GgufFile file;
    if (access == FileAccess::map) {
      file.mapping_ = MappedFile::open(path);
      if (file.mapping_.is_mapped()) {
        file.view_ = GgufView::parse(file.mapping_.data(), file.mapping_.size());
        return file;
      }
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) detail::fail_runtime_error("bitlinear: gguf: cannot open \"" + path + "\"");
    return read(in, MappedFile::regular_file_size(path), path);
  }

  // Reads a whole GGUF file from a stream into memory and parses it. With the size known, the buffer is sized
  // once; otherwise it grows geometrically as 64 KiB chunks arrive (at most twice what was read).
  static GgufFile read(std::istream& in, std::optional<std::uint64_t> total_size = std::nullopt,
                       const std::string& name = "stream") {
    GgufFile file;
    if (total_size) {
      if (*total_size > std::numeric_limits<std::size_t>::max()) {
        detail::throw_bad_gguf("\"" + name + "\" is larger than this platform can address");
      }
      file.bytes_.resize(static_cast<std::size_t>(*total_size));
      in.read(reinterpret_cast<char*>(file.bytes_.data()), static_cast<std::streamsize>(file.bytes_.size()));
      if (in.bad()) detail::fail_runtime_error("bitlinear: gguf: read error in \"" + name + "\"");
      file.bytes_.resize(static_cast<std::size_t>(in.gcount()));
    } else {
      // Appended chunk by chunk: the vector grows geometrically, never ahead of the bytes that arrived.
      std::vector<char> chunk(std::size_t{1} << 16);
      while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())), in.gcount() > 0) {
        const auto got = static_cast<std::size_t>(in.gcount());
        file.bytes_.insert(file.bytes_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(got));
      }
      if (in.bad()) detail::fail_runtime_error("bitlinear: gguf: read error in \"" + name + "\"");
      file.bytes_.shrink_to_fit();
    }
    file.view_ = GgufView::parse(file.bytes_.data(), file.bytes_.size());
    return file;
  }

  static GgufFile from_bytes(std::vector<std::uint8_t> bytes) {
    GgufFile file;
    file.bytes_ = std::move(bytes);
    file.view_ = GgufView::parse(file.bytes_.data(), file.bytes_.size());
    return file;
  }

  const GgufView& view() const noexcept { return view_; }
  bool is_mapped() const noexcept { return mapping_.is_mapped(); }

  // Drops this process's resident pages that lie wholly inside tensor t's bytes (a mapped file only; POSIX
  // madvise MADV_DONTNEED on the private read-only mapping). The bytes stay valid: touching them again reads
  // them from the file. Loaders call it once a tensor is imported, so that the peak memory of a load is the
  // layers plus about one tensor, not the layers plus the whole file. No effect where it cannot apply.
  void release(const GgufTensor& t) const noexcept {
#if BITLINEAR_HAVE_FILE_MAPPING && !defined(_WIN32) && defined(MADV_DONTNEED)
    if (!mapping_.is_mapped() || t.size_bytes == 0 || t.data < mapping_.data() ||
        t.size_bytes > static_cast<std::uint64_t>(mapping_.data() + mapping_.size() - t.data)) {
      return;
    }
    const long page_size = ::sysconf(_SC_PAGESIZE);
    if (page_size <= 0) return;
    const auto page = static_cast<std::uintptr_t>(page_size);
    const auto begin = reinterpret_cast<std::uintptr_t>(t.data);
    const std::uintptr_t first = (begin + page - 1) / page * page;
    const std::uintptr_t last = (begin + static_cast<std::uintptr_t>(t.size_bytes)) / page * page;
    if (first < last) (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
#else
    (void)t;
#endif
  }
  std::size_t resident_bytes() const { return mapping_.resident_bytes(); }

  GgufFile(GgufFile&&) noexcept = default;
  GgufFile& operator=(GgufFile&&) noexcept = default;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

 private:
  GgufFile() = default;
  MappedFile mapping_;               // moving keeps the mapping's address, so the view's pointers stay valid
  std::vector<std::uint8_t> bytes_;  // likewise a vector's buffer
  GgufView view_;
};

BITLINEAR_NAMESPACE_END
