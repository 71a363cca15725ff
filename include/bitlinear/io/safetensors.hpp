// bitlinear: a reader for .safetensors files (the tensor container of Hugging Face checkpoints), enough to pull
// tensors out by name, hardened against hostile files.
//
// Layout (https://huggingface.co/docs/safetensors): 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON,
// then the raw tensor data. The JSON is one object mapping each tensor name to
//   {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
// (offsets in bytes, relative to the first byte after the header, little-endian row-major data), plus an
// optional "__metadata__" object of string values.
//
// The parser is strict and handles only that subset: no floats, negative numbers, nulls or unknown keys in a
// tensor entry; duplicate names, unknown dtypes, a header longer than 100 MB or than the file, offsets outside
// the data, a byte size that is not product(shape) * dtype size (checked without overflow), and tensors that
// overlap or leave holes in the data are all rejected with std::invalid_argument naming the problem. Nothing is
// allocated beyond what the header bytes themselves justify; tensor data is never copied (views point into
// the caller's buffer).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "../fp16.hpp"
#include "../detail/exact_float.hpp"
#include "json.hpp"
#include "mapped_file.hpp"

BITLINEAR_NAMESPACE_BEGIN

// One tensor: a view into the file's bytes (valid as long as those bytes are).
struct SafetensorsTensor {
  std::string name;
  std::string dtype;                 // "F32", "BF16", "U8", ...
  std::vector<std::uint64_t> shape;  // empty for a scalar
  const std::uint8_t* data = nullptr;
  std::size_t size_bytes = 0;
  std::uint64_t offset = 0;  // of the first byte, from the start of the data area (after the header)

  std::uint64_t element_count() const noexcept {
    std::uint64_t n = 1;
    for (std::uint64_t d : shape) n *= d;  // cannot overflow: checked against size_bytes at parse time
    return n;
  }
};

namespace detail {

[[noreturn]] inline void throw_bad_safetensors(const std::string& message) {
  detail::fail_invalid_argument("bitlinear: safetensors: " + message);
}

// Bytes per element of a safetensors dtype, 0 if unknown.
inline std::size_t safetensors_dtype_size(std::string_view dtype) noexcept {
  struct Entry {
    const char* name;
    std::size_t size;
  };
  static constexpr Entry table[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},       {"F8_E4M3", 1}, {"F8_E5M2", 1},
                                    {"I16", 2},  {"U16", 2}, {"F16", 2},      {"BF16", 2},    {"I32", 4},
                                    {"U32", 4},  {"F32", 4}, {"I64", 8},      {"U64", 8},     {"F64", 8}};
  for (const Entry& e : table) {
    if (dtype == e.name) return e.size;
  }
  return 0;
}

// A parsed header: tensors with their offsets into the data area (data pointers unset until bound), the
// metadata, the tensors sorted by name, and the size of the data area the tensors tile.
struct SafetensorsHeader {
  std::vector<SafetensorsTensor> tensors;  // in file order
  std::vector<std::pair<std::string, std::string>> metadata;
  std::vector<std::size_t> by_name;  // indices into tensors, sorted by name (names are unique)
  std::uint64_t data_size = 0;

  void bind(const std::uint8_t* data) {
    for (SafetensorsTensor& t : tensors) t.data = data + t.offset;
  }
};

// Recursive descent over the header subset described above, reading its tokens through the JSON lexer
// (json.hpp). Depth is fixed by the grammar (top object -> entry object -> integer array), so hostile nesting
// cannot overflow the stack. Every step is linear in the header bytes except the duplicate checks, which sort:
// O(n log n) in the number of names.
class SafetensorsHeaderParser {
 public:
  SafetensorsHeaderParser(const char* text, std::size_t size)
      : lex_(std::string_view(text, size), "bitlinear: safetensors: header: ", false) {}

  // data_limit: bytes available after the header (offsets beyond it are rejected while parsing); pass the
  // maximum when the size is not known yet, and compare the result's data_size afterwards.
  SafetensorsHeader parse(std::uint64_t data_limit) {
    SafetensorsHeader h;
    skip_space();
    expect('{', "the header must be a JSON object");
    skip_space();
    bool seen_metadata = false;
    if (!consume('}')) {
      for (;;) {
        skip_space();
        std::string key = parse_string();
        skip_space();
        expect(':', "expected ':' after key \"" + printable(key) + "\"");
        skip_space();
        if (key == "__metadata__") {
          if (seen_metadata) fail("\"__metadata__\" appears twice");
          seen_metadata = true;
          parse_metadata(h.metadata);
        } else {
          h.tensors.push_back(parse_entry(std::move(key), data_limit));
        }
        skip_space();
        if (consume(',')) continue;
        expect('}', "expected ',' or '}' in the header object");
        break;
      }
    }
    skip_space();  // the format pads the header with spaces
    if (!lex_.at_end()) fail("unexpected bytes after the header object");

    h.by_name.resize(h.tensors.size());
    for (std::size_t i = 0; i < h.by_name.size(); ++i) h.by_name[i] = i;
    std::sort(h.by_name.begin(), h.by_name.end(),
              [&](std::size_t a, std::size_t b) { return h.tensors[a].name < h.tensors[b].name; });
    for (std::size_t i = 1; i < h.by_name.size(); ++i) {
      const std::string& name = h.tensors[h.by_name[i]].name;
      if (name == h.tensors[h.by_name[i - 1]].name) fail("tensor \"" + printable(name) + "\" appears twice");
    }
    std::vector<std::size_t> keys(h.metadata.size());
    for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = i;
    std::sort(keys.begin(), keys.end(), [&](std::size_t a, std::size_t b) { return h.metadata[a].first < h.metadata[b].first; });
    for (std::size_t i = 1; i < keys.size(); ++i) {
      const std::string& key = h.metadata[keys[i]].first;
      if (key == h.metadata[keys[i - 1]].first) fail("\"__metadata__\" key \"" + printable(key) + "\" appears twice");
    }
    h.data_size = tiled_size(h.tensors);
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const { lex_.fail(message); }

  static std::string printable(const std::string& s) { return json_printable(s); }

  // Tensors must tile the data area exactly: sorted by offset, no overlap, no hole. Returns the area's size.
  static std::uint64_t tiled_size(const std::vector<SafetensorsTensor>& tensors) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
    spans.reserve(tensors.size());
    for (const SafetensorsTensor& t : tensors) spans.emplace_back(t.offset, t.offset + t.size_bytes);
    std::sort(spans.begin(), spans.end());
    std::uint64_t expected = 0;
    for (const auto& s : spans) {
      if (s.first != expected) {
        throw_bad_safetensors(std::string(s.first < expected ? "tensors overlap" : "hole in the data") +
                              " at data offset " + std::to_string(s.first));
      }
      expected = s.second;
    }
    return expected;
  }

  void skip_space() noexcept { lex_.skip_space(); }
  bool consume(char c) noexcept { return lex_.consume(c); }
  void expect(char c, const std::string& message) { lex_.expect(c, message); }
  std::string parse_string() { return lex_.read_string(); }

  // The header's integers: non-negative, no fraction or exponent, 64 bits.
  std::uint64_t parse_uint() {
    if (lex_.at_end() || lex_.peek() < '0' || lex_.peek() > '9') fail("expected a non-negative integer");
    const std::string_view text = lex_.text().substr(lex_.pos());
    if (text[0] == '0' && text.size() > 1 && text[1] >= '0' && text[1] <= '9') fail("integer with a leading zero");
    std::uint64_t v = 0;
    std::size_t i = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      const auto digit = static_cast<std::uint64_t>(text[i] - '0');
      if (v > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) fail("integer overflows 64 bits");
      v = v * 10 + digit;
    }
    lex_.seek(lex_.pos() + i);
    if (lex_.next_is('.') || lex_.next_is('e') || lex_.next_is('E')) fail("expected an integer, found a fraction");
    return v;
  }

  std::vector<std::uint64_t> parse_uint_array() {
    expect('[', "expected an array of integers");
    std::vector<std::uint64_t> values;
    skip_space();
    if (consume(']')) return values;
    for (;;) {
      skip_space();
      values.push_back(parse_uint());  // each element used at least one header byte: bounded allocation
      skip_space();
      if (consume(',')) continue;
      expect(']', "expected ',' or ']' in an integer array");
      return values;
    }
  }

  void parse_metadata(std::vector<std::pair<std::string, std::string>>& metadata) {
    expect('{', "\"__metadata__\" must be an object of strings");
    skip_space();
    if (consume('}')) return;
    for (;;) {
      skip_space();
      std::string key = parse_string();
      skip_space();
      expect(':', "expected ':' in \"__metadata__\"");
      skip_space();
      if (!lex_.next_is('"')) fail("\"__metadata__\" value of \"" + printable(key) + "\" is not a string");
      std::string value = parse_string();
      metadata.emplace_back(std::move(key), std::move(value));  // duplicates: checked once, after parsing
      skip_space();
      if (consume(',')) continue;
      expect('}', "expected ',' or '}' in \"__metadata__\"");
      return;
    }
  }

  SafetensorsTensor parse_entry(std::string name, std::uint64_t data_limit) {
    expect('{', "tensor \"" + printable(name) + "\": entry must be an object");
    bool has_dtype = false, has_shape = false, has_offsets = false;
    SafetensorsTensor t;
    std::vector<std::uint64_t> offsets;
    auto where = [&] { return "tensor \"" + printable(name) + "\""; };
    skip_space();
    if (!consume('}')) {
      for (;;) {
        skip_space();
        const std::string key = parse_string();
        skip_space();
        expect(':', where() + ": expected ':'");
        skip_space();
        if (key == "dtype" && !has_dtype) {
          t.dtype = parse_string();
          has_dtype = true;
        } else if (key == "shape" && !has_shape) {
          t.shape = parse_uint_array();
          has_shape = true;
        } else if (key == "data_offsets" && !has_offsets) {
          offsets = parse_uint_array();
          has_offsets = true;
        } else {
          fail(where() + ": unexpected or repeated key \"" + printable(key) + "\"");
        }
        skip_space();
        if (consume(',')) continue;
        if (!consume('}')) fail(where() + ": expected ',' or '}'");
        break;
      }
    }
    if (!has_dtype || !has_shape || !has_offsets) fail(where() + ": needs dtype, shape and data_offsets");
    const std::size_t element_size = safetensors_dtype_size(t.dtype);
    if (element_size == 0) fail(where() + ": unknown dtype \"" + printable(t.dtype) + "\"");
    if (offsets.size() != 2) fail(where() + ": data_offsets must hold exactly two integers");
    const std::uint64_t begin = offsets[0], end = offsets[1];
    if (begin > end || end > data_limit) {
      fail(where() + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
           "] are not within the " + std::to_string(data_limit) + " data bytes");
    }
    // product(shape) * element_size, stopping before any overflow. Any zero dimension (wherever it is) makes an
    // empty tensor: check that first, or a shape like [4, 0] would be compared against an empty span too early.
    std::uint64_t bytes = 0;
    if (std::find(t.shape.begin(), t.shape.end(), std::uint64_t{0}) == t.shape.end()) {
      bytes = element_size;
      for (std::uint64_t d : t.shape) {
        if (bytes > (end - begin) / d) {
          fail(where() + ": shape needs more bytes than its data_offsets span (" + std::to_string(end - begin) + ")");
        }
        bytes *= d;
      }
    }
    if (bytes != end - begin) {
      fail(where() + ": shape and dtype need " + std::to_string(bytes) + " bytes, data_offsets span " +
           std::to_string(end - begin));
    }
    if (bytes > std::numeric_limits<std::size_t>::max()) {
      fail(where() + ": " + std::to_string(bytes) + " bytes are more than this platform can address");
    }
    t.name = std::move(name);
    t.offset = begin;
    t.size_bytes = static_cast<std::size_t>(bytes);
    return t;
  }

  JsonLexer lex_;
};

// Reads 8 little-endian bytes.
inline std::uint64_t safetensors_u64_le(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

}  // namespace detail

// A parsed safetensors file over caller-owned bytes (not copied: keep them alive while using the view).
class SafetensorsView {
 public:
  // Largest header accepted (the limit of the reference implementation).
  static constexpr std::uint64_t max_header_bytes = 100'000'000;

  static SafetensorsView parse(const void* bytes, std::size_t size) {
    if (bytes == nullptr && size != 0) detail::throw_bad_safetensors("data is null");
    const auto* p = static_cast<const std::uint8_t*>(bytes);
    const std::size_t header_size = check_header_length(p, size, size);
    const std::size_t data_size = size - 8 - header_size;
    detail::SafetensorsHeader h =
        detail::SafetensorsHeaderParser(reinterpret_cast<const char*>(p + 8), header_size).parse(data_size);
    check_data_size(h, data_size);
    return SafetensorsView(std::move(h), p + 8 + header_size);
  }

  // Checks the 8-byte length prefix of a file of `file_size` bytes (of which `available` >= 8 are at p) and
  // returns the header length. Throws std::invalid_argument if the file is too short or the header too long.
  static std::size_t check_header_length(const std::uint8_t* p, std::uint64_t available, std::uint64_t file_size) {
    if (available < 8) {
      detail::throw_bad_safetensors("truncated: " + std::to_string(available) +
                                    " bytes, less than the 8-byte header length");
    }
    const std::uint64_t header = detail::safetensors_u64_le(p);
    if (header > max_header_bytes) {
      detail::throw_bad_safetensors("header length " + std::to_string(header) + " exceeds the 100 MB limit");
    }
    if (header > file_size - 8) {
      detail::throw_bad_safetensors("truncated: header length " + std::to_string(header) + " but only " +
                                    std::to_string(file_size - 8) + " bytes follow");
    }
    return static_cast<std::size_t>(header);
  }

  // Throws unless the tensors tile exactly `data_size` bytes.
  static void check_data_size(const detail::SafetensorsHeader& h, std::uint64_t data_size) {
    if (h.data_size < data_size) {
      detail::throw_bad_safetensors(std::to_string(data_size - h.data_size) + " bytes after the last tensor");
    }
    if (h.data_size > data_size) {
      detail::throw_bad_safetensors("truncated: the tensors need " + std::to_string(h.data_size) +
                                    " data bytes, the file holds " + std::to_string(data_size));
    }
  }

  SafetensorsView() = default;
  // A view of an already parsed header over its data area (h.data_size bytes at `data`).
  SafetensorsView(detail::SafetensorsHeader h, const std::uint8_t* data) : header_(std::move(h)) { header_.bind(data); }

  const std::vector<SafetensorsTensor>& tensors() const noexcept { return header_.tensors; }
  const std::vector<std::pair<std::string, std::string>>& metadata() const noexcept { return header_.metadata; }
  // Bytes of tensor data (after the header).
  std::uint64_t data_size() const noexcept { return header_.data_size; }

  // O(log n) lookup by name.
  const SafetensorsTensor* find(std::string_view name) const noexcept {
    const auto& idx = header_.by_name;
    const auto it = std::lower_bound(idx.begin(), idx.end(), name, [&](std::size_t i, std::string_view n) {
      return std::string_view(header_.tensors[i].name) < n;
    });
    if (it == idx.end() || header_.tensors[*it].name != name) return nullptr;
    return &header_.tensors[*it];
  }
  // The tensor called `name`; throws std::invalid_argument if there is none.
  const SafetensorsTensor& at(std::string_view name) const {
    const SafetensorsTensor* t = find(name);
    if (t == nullptr) detail::throw_bad_safetensors("no tensor named \"" + std::string(name) + "\"");
    return *t;
  }

 private:
  detail::SafetensorsHeader header_;
};

// How SafetensorsFile::open gets at the bytes.
enum class FileAccess {
  map,   // memory-map the file where the platform can (falls back to reading for pipes, devices, other OSes)
  read,  // read the file into memory
};

// A safetensors file, memory-mapped or read into memory, and parsed. The header is read and validated before any
// tensor data is touched; only the data the header justifies is read (never more than the file holds).
class SafetensorsFile {
 public:
  // Throws std::runtime_error if the file cannot be opened or read, std::invalid_argument if it is malformed.
  // Mapped: opening costs O(header); tensor pages are read from disk when first used. The file must not be
  // truncated while mapped (that is SIGBUS on POSIX, as for any mapping).
  static SafetensorsFile open(const std::string& path, FileAccess access = FileAccess::map) {
#if BITLINEAR_EXCEPTIONS
    try {  // the parser sees bytes only: name the file (a shard of a checkpoint, say) in its errors
      return open_unnamed(path, access);
    } catch (const std::invalid_argument& e) {
      detail::fail_invalid_argument(std::string(e.what()) + " (in \"" + path + "\")");
    }
#else
    return open_unnamed(path, access);
#endif
  }

 private:
  static SafetensorsFile open_unnamed(const std::string& path, FileAccess access) {
    SafetensorsFile file;
    if (access == FileAccess::map) {
      file.mapping_ = MappedFile::open(path);
      if (file.mapping_.is_mapped()) {
        file.view_ = SafetensorsView::parse(file.mapping_.data(), file.mapping_.size());
        return file;
      }
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) detail::fail_runtime_error("bitlinear: safetensors: cannot open \"" + path + "\"");
    return read(in, MappedFile::regular_file_size(path), path);
  }

 public:

  // Reads a safetensors file from a stream: the 8-byte length, then the header (parsed and validated), then
  // exactly the data bytes the header describes, and checks that the stream ends there. `total_size` (if
  // known) is checked against the header before the data is allocated; otherwise the buffer grows in chunks as
  // bytes arrive, so a header that claims more than the stream holds costs at most twice what was read.
  static SafetensorsFile read(std::istream& in, std::optional<std::uint64_t> total_size = std::nullopt,
                              const std::string& name = "stream") {
    SafetensorsFile file;
    std::uint8_t prefix[8];
    const std::size_t got = read_some(in, prefix, 8, name);
    const std::uint64_t size_for_check = total_size ? *total_size : std::numeric_limits<std::uint64_t>::max();
    const std::size_t header_size = SafetensorsView::check_header_length(prefix, got, std::max<std::uint64_t>(size_for_check, got));
    std::vector<char> header;
    read_growing(in, header, header_size, name, "header");
    const std::uint64_t data_limit = total_size ? *total_size - 8 - header_size : std::numeric_limits<std::uint64_t>::max();
    detail::SafetensorsHeader h = detail::SafetensorsHeaderParser(header.data(), header.size()).parse(data_limit);
    if (total_size) SafetensorsView::check_data_size(h, data_limit);
    if (h.data_size > std::numeric_limits<std::size_t>::max()) {
      detail::throw_bad_safetensors("the tensors need " + std::to_string(h.data_size) +
                                    " bytes, more than this platform can address");
    }
    const auto data_size = static_cast<std::size_t>(h.data_size);
    if (total_size) {
      file.bytes_.resize(data_size);  // justified by the header and by the file's size
      if (read_some(in, file.bytes_.data(), data_size, name) != data_size) {
        detail::fail_runtime_error("bitlinear: safetensors: \"" + name + "\" ended early (was it truncated while read?)");
      }
    } else {
      read_growing(in, file.bytes_, data_size, name, "data");
    }
    char extra = 0;
    if (in.read(&extra, 1).gcount() != 0) detail::throw_bad_safetensors("bytes after the last tensor");
    if (in.bad()) detail::fail_runtime_error("bitlinear: safetensors: read error in \"" + name + "\"");
    file.view_ = SafetensorsView(std::move(h), file.bytes_.data());
    return file;
  }

  static SafetensorsFile from_bytes(std::vector<std::uint8_t> bytes) {
    SafetensorsFile file;
    file.bytes_ = std::move(bytes);
    file.view_ = SafetensorsView::parse(file.bytes_.data(), file.bytes_.size());
    return file;
  }
  const SafetensorsView& view() const noexcept { return view_; }
  // True if the tensors are views into a memory mapping of the file.
  bool is_mapped() const noexcept { return mapping_.is_mapped(); }
  // Bytes of the mapping resident in RAM now (0 if not mapped or unknown).
  std::size_t resident_bytes() const { return mapping_.resident_bytes(); }

  SafetensorsFile(SafetensorsFile&&) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

 private:
  SafetensorsFile() = default;

  static std::size_t read_some(std::istream& in, void* out, std::size_t n, const std::string& name) {
    in.read(static_cast<char*>(out), static_cast<std::streamsize>(n));
    if (in.bad()) detail::fail_runtime_error("bitlinear: safetensors: read error in \"" + name + "\"");
    return static_cast<std::size_t>(in.gcount());
  }

  // Reads exactly n bytes into `out`, growing it geometrically from 1 MiB as bytes arrive.
  template <class Byte>
  static void read_growing(std::istream& in, std::vector<Byte>& out, std::size_t n, const std::string& name,
                           const char* what) {
    out.clear();
    while (out.size() < n) {
      const std::size_t step = std::min(n - out.size(), std::max<std::size_t>(std::size_t{1} << 20, out.size()));
      const std::size_t old = out.size();
      out.resize(old + step);
      const std::size_t got = read_some(in, out.data() + old, step, name);
      if (got != step) {
        detail::throw_bad_safetensors(std::string("truncated: the ") + what + " needs " + std::to_string(n) +
                                      " bytes, only " + std::to_string(old + got) + " follow");
      }
    }
  }

  MappedFile mapping_;               // moving a mapping keeps its address, so the view's pointers stay valid
  std::vector<std::uint8_t> bytes_;  // likewise for a vector's buffer
  SafetensorsView view_;
};

namespace detail {

enum class FloatDtype { f32, f16, bf16, f64 };

// The dtype of a floating tensor; throws std::invalid_argument for any other.
inline FloatDtype float_dtype_of(const SafetensorsTensor& t) {
  if (t.dtype == "F32") return FloatDtype::f32;
  if (t.dtype == "F16") return FloatDtype::f16;
  if (t.dtype == "BF16") return FloatDtype::bf16;
  if (t.dtype == "F64") return FloatDtype::f64;
  throw_bad_safetensors("tensor \"" + t.name + "\" has dtype " + t.dtype +
                        "; a floating-point dtype (F32, F16, BF16, F64) is needed");
}

inline std::size_t float_dtype_size(FloatDtype dtype) noexcept {
  return dtype == FloatDtype::f32 ? 4 : dtype == FloatDtype::f64 ? 8 : 2;
}

// n little-endian values of `dtype` at p -> out: F32, BF16 and F16 exactly (a NaN stays a NaN, fp16.hpp), F64
// rounded to float (out of range: infinity).
inline void float_row(FloatDtype dtype, const std::uint8_t* p, std::size_t n, float* out) noexcept {
  switch (dtype) {
    case FloatDtype::f32:
      for (std::size_t i = 0; i < n; ++i, p += 4) {
        out[i] = float_from_bits(static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                                 static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24);
      }
      break;
    case FloatDtype::bf16:
      for (std::size_t i = 0; i < n; ++i, p += 2) {
        out[i] = float_from_bits((static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8) << 16);
      }
      break;
    case FloatDtype::f16:
      for (std::size_t i = 0; i < n; ++i, p += 2) {
        out[i] = fp16_to_float(static_cast<std::uint16_t>(p[0] | p[1] << 8));
      }
      break;
    case FloatDtype::f64:
      for (std::size_t i = 0; i < n; ++i, p += 8) {
        std::uint64_t bits = 0;
        for (int b = 7; b >= 0; --b) bits = bits << 8 | p[b];
        double d;
        std::memcpy(&d, &bits, 8);
        const double float_max = static_cast<double>(std::numeric_limits<float>::max());
        if (d > float_max || d < -float_max) {  // out of float range: converting would be undefined behaviour
          out[i] = d > 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
        } else {
          out[i] = static_cast<float>(d);  // also NaN -> NaN
        }
      }
      break;
  }
}

}  // namespace detail

// Converts a floating-point tensor (F32, F16, BF16 or F64; little-endian) to float32. F64 values are rounded
// to float; F16 and BF16 convert exactly. Throws std::invalid_argument for any other dtype.
inline std::vector<float> safetensors_to_float(const SafetensorsTensor& t) {
  const detail::FloatDtype dtype = detail::float_dtype_of(t);
  std::vector<float> out(static_cast<std::size_t>(t.element_count()));
  detail::float_row(dtype, t.data, out.size(), out.data());
  return out;
}

BITLINEAR_NAMESPACE_END
