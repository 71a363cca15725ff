// A small GGUF writer for the tests (written from the container description in docs/gguf.md, independently of
// the reader), and the I2_S packing of bitnet.cpp's converter (utils/convert-hf-to-gguf-bitnet.py,
// quantize_to_i2_s), re-expressed from its description: codes -> fields code + 1, 128-weight blocks, byte
// 32 i + g holding element 128 i + 32 k + g in bits 6 - 2k, then a 32-byte tail with the f32 scale first.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace gguf_test {

using Bytes = std::vector<std::uint8_t>;

enum : std::uint32_t { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 };

inline void put(Bytes& b, std::uint64_t v, unsigned n) {
  for (unsigned i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void put_u32(Bytes& b, std::uint64_t v) { put(b, v, 4); }
inline void put_u64(Bytes& b, std::uint64_t v) { put(b, v, 8); }
inline void put_str(Bytes& b, const std::string& s) {
  put_u64(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}
inline void put_f32(Bytes& b, float f) {
  std::uint32_t u = 0;
  std::memcpy(&u, &f, 4);
  put_u32(b, u);
}
inline void put_f64(Bytes& b, double d) {
  std::uint64_t u = 0;
  std::memcpy(&u, &d, 8);
  put_u64(b, u);
}

struct Tensor {
  std::string name;
  std::vector<std::uint64_t> ne;
  std::uint32_t type = 0;
  Bytes data;
  std::optional<std::uint64_t> offset;  // default: packed one after another at the alignment
};

struct Writer {
  std::uint32_t version = 3;
  std::uint32_t alignment = 32;  // used for the layout; write a general.alignment key to change the reader's
  std::uint64_t kv_count = 0;
  Bytes kvs;
  std::vector<Tensor> tensors;
  std::optional<std::uint64_t> tensor_count_override, kv_count_override;

  // A key/value whose value bytes (after the type) are `payload`.
  void kv(const std::string& key, std::uint32_t type, const Bytes& payload) {
    put_str(kvs, key);
    put_u32(kvs, type);
    kvs.insert(kvs.end(), payload.begin(), payload.end());
    ++kv_count;
  }
  void kv_u32(const std::string& key, std::uint32_t v) {
    Bytes p;
    put_u32(p, v);
    kv(key, U32, p);
  }
  void kv_f32(const std::string& key, float v) {
    Bytes p;
    put_f32(p, v);
    kv(key, F32, p);
  }
  void kv_str(const std::string& key, const std::string& v) {
    Bytes p;
    put_str(p, v);
    kv(key, STRING, p);
  }
  void set_alignment(std::uint32_t a) {
    alignment = a;
    kv_u32("general.alignment", a);
  }
  void tensor(const std::string& name, std::vector<std::uint64_t> ne, std::uint32_t type, Bytes data) {
    tensors.push_back({name, std::move(ne), type, std::move(data), std::nullopt});
  }

  // The file; no padding after the last tensor (so that every truncation cuts into something).
  Bytes build() const {
    Bytes b = {'G', 'G', 'U', 'F'};
    put_u32(b, version);
    put_u64(b, tensor_count_override ? *tensor_count_override : tensors.size());
    put_u64(b, kv_count_override ? *kv_count_override : kv_count);
    b.insert(b.end(), kvs.begin(), kvs.end());
    std::vector<std::uint64_t> offsets;
    std::uint64_t next = 0;
    for (const Tensor& t : tensors) {
      const std::uint64_t o = t.offset ? *t.offset : next;
      offsets.push_back(o);
      next = (o + t.data.size() + alignment - 1) / alignment * alignment;
      put_str(b, t.name);
      put_u32(b, t.ne.size());
      for (std::uint64_t n : t.ne) put_u64(b, n);
      put_u32(b, t.type);
      put_u64(b, o);
    }
    while (b.size() % alignment != 0) b.push_back(0);
    const std::size_t data_start = b.size();
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const std::size_t end = data_start + static_cast<std::size_t>(offsets[i]) + tensors[i].data.size();
      if (b.size() < end) b.resize(end, 0);
      if (!tensors[i].data.empty()) {
        std::memcpy(b.data() + data_start + offsets[i], tensors[i].data.data(), tensors[i].data.size());
      }
    }
    return b;
  }
};

// I2_S bytes of a row-major code matrix (codes in {-1, 0, +1}, n = rows * in a multiple of 128) and its scale.
inline Bytes i2s_pack(const std::vector<std::int8_t>& codes, float scale) {
  const std::size_t n = codes.size();
  Bytes out(n / 4 + 32, 0);
  for (std::size_t e = 0; e < n; ++e) {
    const std::size_t i = e / 128, k = e % 128 / 32, g = e % 32;
    out[32 * i + g] = static_cast<std::uint8_t>(out[32 * i + g] | (codes[e] + 1) << (6 - 2 * k));
  }
  std::uint32_t bits = 0;
  std::memcpy(&bits, &scale, 4);
  for (unsigned i = 0; i < 4; ++i) out[n / 4 + i] = static_cast<std::uint8_t>(bits >> (8 * i));
  return out;
}

}  // namespace gguf_test
