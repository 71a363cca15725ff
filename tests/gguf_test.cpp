// GGUF reader (io/gguf.hpp) and I2_S import (io/gguf_import.hpp): files built by the test writer
// (gguf_writer.hpp), every metadata type, malformed fields, and the I2_S import against the Hugging Face import
// of the same weights.
#include <gtest/gtest.h>

#include <bitlinear/io/gguf.hpp>
#include <bitlinear/io/gguf_import.hpp>
#include <bitlinear/io/hf_import.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "gguf_writer.hpp"
#include "test_util.hpp"

namespace {

using gguf_test::Bytes;
using gguf_test::Writer;
namespace g = gguf_test;

bitlinear::GgufView parse(const Bytes& b) { return bitlinear::GgufView::parse(b.data(), b.size()); }

void expect_rejected(const Bytes& b, const std::string& needle) {
  try {
    (void)parse(b);
    ADD_FAILURE() << "accepted a malformed file; expected: " << needle;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

Bytes f32_bytes(const std::vector<float>& v) {
  Bytes b;
  for (float f : v) g::put_f32(b, f);
  return b;
}

std::vector<std::int8_t> random_codes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::int8_t> c(n);
  for (auto& x : c) x = static_cast<std::int8_t>(static_cast<int>(rng() % 3) - 1);
  return c;
}

struct TempFile {
  std::string path;
  explicit TempFile(const Bytes& bytes) {
    static int counter = 0;
    path = (std::filesystem::temp_directory_path() /
            ("bitlinear_gguf_" + std::to_string(std::random_device{}()) + "_" + std::to_string(counter++) + ".gguf"))
               .string();
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  ~TempFile() { std::remove(path.c_str()); }
};

// Every value type, nested arrays, a tensor.
Writer every_type_file(std::uint32_t version) {
  Writer w;
  w.version = version;
  Bytes p;
  p = {0xFE};
  w.kv("t.u8", g::U8, p);
  p = {0x80};
  w.kv("t.i8", g::I8, p);
  p.clear(), g::put(p, 0xBEEF, 2), w.kv("t.u16", g::U16, p);
  p.clear(), g::put(p, 0x8001, 2), w.kv("t.i16", g::I16, p);
  w.kv_u32("t.u32", 4000000000u);
  p.clear(), g::put_u32(p, 0xFFFFFFFFu), w.kv("t.i32", g::I32, p);
  w.kv_f32("t.f32", 1.5f);
  p = {1};
  w.kv("t.bool", g::BOOL, p);
  w.kv_str("t.string", "hello \xff");  // bytes, not checked as UTF-8
  p.clear(), g::put_u64(p, 0xFFFFFFFFFFFFFFFFull), w.kv("t.u64", g::U64, p);
  p.clear(), g::put_u64(p, 0x8000000000000000ull), w.kv("t.i64", g::I64, p);
  p.clear(), g::put_f64(p, -0.25), w.kv("t.f64", g::F64, p);
  // [u32] = {7, 8, 9}
  p.clear(), g::put_u32(p, g::U32), g::put_u64(p, 3), g::put_u32(p, 7), g::put_u32(p, 8), g::put_u32(p, 9);
  w.kv("t.arr_u32", g::ARRAY, p);
  // [string] = {"a", "", "ccc"}
  p.clear(), g::put_u32(p, g::STRING), g::put_u64(p, 3), g::put_str(p, "a"), g::put_str(p, ""), g::put_str(p, "ccc");
  w.kv("t.arr_str", g::ARRAY, p);
  // [[i8]] = {{1, -1}, {}, {5}}
  p.clear(), g::put_u32(p, g::ARRAY), g::put_u64(p, 3);
  g::put_u32(p, g::I8), g::put_u64(p, 2), p.push_back(1), p.push_back(0xFF);
  g::put_u32(p, g::I8), g::put_u64(p, 0);
  g::put_u32(p, g::I8), g::put_u64(p, 1), p.push_back(5);
  w.kv("t.arr_arr", g::ARRAY, p);
  // [bool] = {0, 1}
  p.clear(), g::put_u32(p, g::BOOL), g::put_u64(p, 2), p.push_back(0), p.push_back(1);
  w.kv("t.arr_bool", g::ARRAY, p);
  w.tensor("w", {3, 2}, 0, f32_bytes({1, 2, 3, 4, 5, 6}));
  w.tensor("h", {2}, 1, Bytes{0x00, 0x3C, 0x00, 0xC0});  // F16 1.0, -2.0
  return w;
}

TEST(Gguf, EveryMetadataTypeRoundTripsInVersions2And3) {
  for (std::uint32_t version : {2u, 3u}) {
    SCOPED_TRACE(version);
    const Bytes b = every_type_file(version).build();
    const auto v = parse(b);
    EXPECT_EQ(v.version(), version);
    EXPECT_EQ(v.metadata().size(), 16u);
    EXPECT_EQ(v.get_uint("t.u8"), 0xFEu);
    EXPECT_EQ(v.get_int("t.i8"), -128);
    EXPECT_EQ(v.get_uint("t.u16"), 0xBEEFu);
    EXPECT_EQ(v.get_int("t.i16"), -32767);
    EXPECT_EQ(v.get_u32("t.u32"), 4000000000u);
    EXPECT_EQ(v.get_int("t.i32"), -1);
    EXPECT_EQ(v.get_f32("t.f32"), 1.5f);
    EXPECT_TRUE(v.get_bool("t.bool"));
    EXPECT_EQ(v.get_string("t.string"), "hello \xff");
    EXPECT_EQ(v.get_uint("t.u64"), 0xFFFFFFFFFFFFFFFFull);
    EXPECT_EQ(v.get_int("t.i64"), INT64_MIN);
    EXPECT_EQ(v.get_double("t.f64"), -0.25);
    const auto a = v.get_array("t.arr_u32");
    ASSERT_EQ(a.size(), 3u);
    EXPECT_EQ(a.element_type(), bitlinear::GgufValueType::u32);
    EXPECT_EQ(*a[2].as_uint(), 9u);
    EXPECT_THROW((void)a[3], std::invalid_argument);
    const auto s = v.get_array("t.arr_str").elements();
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(*s[0].as_string(), "a");
    EXPECT_EQ(*s[1].as_string(), "");
    EXPECT_EQ(*s[2].as_string(), "ccc");
    EXPECT_THROW((void)v.get_array("t.arr_str")[0], std::invalid_argument);  // strings: elements() only
    const auto nested = v.get_array("t.arr_arr").elements();
    ASSERT_EQ(nested.size(), 3u);
    EXPECT_EQ(nested[0].as_array()->size(), 2u);
    EXPECT_EQ(*(*nested[0].as_array())[1].as_int(), -1);
    EXPECT_EQ(nested[1].as_array()->size(), 0u);
    EXPECT_EQ(*(*nested[2].as_array())[0].as_int(), 5);
    EXPECT_FALSE(*v.get_array("t.arr_bool")[0].as_bool());
    EXPECT_TRUE(*v.get_array("t.arr_bool")[1].as_bool());
    // Typed accessors name the key and refuse other types and values that do not fit.
    EXPECT_THROW((void)v.get_string("t.u32"), std::invalid_argument);
    EXPECT_THROW((void)v.get_uint("t.i8"), std::invalid_argument);  // negative
    EXPECT_THROW((void)v.get_int("t.u64"), std::invalid_argument);  // >= 2^63
    EXPECT_THROW((void)v.get_u32("t.u64"), std::invalid_argument);
    EXPECT_THROW((void)v.get_f32("t.f64"), std::invalid_argument);
    try {
      (void)v.get_string("missing.key");
      ADD_FAILURE();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("\"missing.key\""), std::string::npos);
    }
    // Tensors.
    ASSERT_EQ(v.tensors().size(), 2u);
    const auto& w = v.at("w");
    EXPECT_EQ(w.type, bitlinear::GgufType::f32);
    EXPECT_EQ(w.n_dims, 2u);
    EXPECT_EQ(w.ne[0], 3u);
    EXPECT_EQ(w.ne[1], 2u);
    EXPECT_EQ(w.size_bytes, 24u);
    EXPECT_TRUE(w.size_known);
    EXPECT_EQ(v.data_offset() % 32, 0u);
    EXPECT_EQ(w.data, b.data() + v.data_offset());
    EXPECT_EQ(bitlinear::gguf_to_float(w), (std::vector<float>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(v.at("h").offset, 32u);
    EXPECT_EQ(bitlinear::gguf_to_float(v.at("h")), (std::vector<float>{1.0f, -2.0f}));
    EXPECT_EQ(v.find("nope"), nullptr);
    EXPECT_THROW((void)v.at("nope"), std::invalid_argument);
  }
}

TEST(Gguf, AlignmentIsReadAndChecked) {
  for (std::uint32_t a : {1u, 8u, 64u, 4096u}) {
    SCOPED_TRACE(a);
    Writer w;
    w.set_alignment(a);
    w.tensor("x", {5}, 24, Bytes{1, 2, 3, 4, 5});  // I8
    w.tensor("y", {1}, 0, f32_bytes({3.0f}));
    const Bytes b = w.build();
    const auto v = parse(b);
    EXPECT_EQ(v.alignment(), a);
    EXPECT_EQ(v.data_offset() % a, 0u);
    EXPECT_EQ(v.at("y").offset, (5 + a - 1) / a * a);
    EXPECT_EQ(bitlinear::gguf_to_float(v.at("y"))[0], 3.0f);
  }
  for (std::uint32_t bad : {0u, 3u, 48u, 1u << 21}) {
    Writer w;
    w.kv_u32("general.alignment", bad);
    expect_rejected(w.build(), "general.alignment " + std::to_string(bad) + " must be a power of two");
  }
  Writer w;
  Bytes p;
  g::put_u64(p, 32);
  w.kv("general.alignment", g::U64, p);
  expect_rejected(w.build(), "general.alignment has type u64; it must be u32");
  Writer m;  // a tensor offset that is not a multiple of the alignment
  m.tensor("x", {4}, 24, Bytes{1, 2, 3, 4});
  m.tensors[0].offset = 4;
  expect_rejected(m.build(), "offset 4 is not a multiple of the alignment 32");
}

TEST(Gguf, EveryTruncationIsRefused) {
  for (std::uint32_t version : {2u, 3u}) {
    const Bytes b = every_type_file(version).build();
    for (std::size_t n = 0; n < b.size(); ++n) {
      EXPECT_THROW((void)bitlinear::GgufView::parse(b.data(), n), std::invalid_argument) << "size " << n;
    }
  }
}

TEST(Gguf, MalformedHeadersAreRefusedByName) {
  Bytes b = every_type_file(3).build();
  Bytes bad = b;
  bad[0] = 'X';
  expect_rejected(bad, "magic");
  bad = b;
  bad[4] = 1;
  expect_rejected(bad, "version 1 is not supported");
  bad = b;
  bad[4] = 0, bad[7] = 3;
  expect_rejected(bad, "big-endian");
  Writer w;
  w.tensor_count_override = 1ull << 62;
  expect_rejected(w.build(), "tensor count 4611686018427387904 cannot fit");
  Writer k;
  k.kv_count_override = ~0ull;
  expect_rejected(k.build(), "key/value count");
  Writer s;  // a key whose length runs past the end
  g::put_u64(s.kvs, 1ull << 40), s.kv_count = 1;
  s.kvs.resize(s.kvs.size() + 16, 0);
  expect_rejected(s.build(), "key/value 0 key at byte 32 has length 1099511627776");
  Writer t;
  Bytes p;
  g::put_u32(p, 0);
  t.kv("x", 13, p);
  expect_rejected(t.build(), "value type is 13; the 13 GGUF value types are 0-12");
  Writer arr;
  p.clear(), g::put_u32(p, g::U64), g::put_u64(p, 1ull << 61);
  arr.kv("big", g::ARRAY, p);
  expect_rejected(arr.build(), "array of 2305843009213693952 u64");
  Writer et;
  p.clear(), g::put_u32(p, 99), g::put_u64(p, 0);
  et.kv("e", g::ARRAY, p);
  expect_rejected(et.build(), "array element type is 99");
  Writer bo;
  bo.kv("b", g::BOOL, Bytes{2});
  expect_rejected(bo.build(), "bool value 2");
  Writer bo2;
  p.clear(), g::put_u32(p, g::BOOL), g::put_u64(p, 2), p.push_back(1), p.push_back(7);
  bo2.kv("b", g::ARRAY, p);
  expect_rejected(bo2.build(), "[1]: bool value 7");
  Writer deep;  // arrays nested 9 deep
  p.clear();
  for (int d = 0; d < 9; ++d) g::put_u32(p, g::ARRAY), g::put_u64(p, 1);
  g::put_u32(p, g::U8), g::put_u64(p, 0);
  deep.kv("deep", g::ARRAY, p);
  expect_rejected(deep.build(), "nested deeper than 8");
  Writer dup;
  dup.kv_u32("a", 1), dup.kv_u32("a", 2);
  expect_rejected(dup.build(), "metadata key \"a\" appears twice");
  Writer dupt;
  dupt.tensor("x", {1}, 0, f32_bytes({1})), dupt.tensor("x", {1}, 0, f32_bytes({1}));
  expect_rejected(dupt.build(), "tensor name \"x\" appears twice");
  Writer dims;
  dims.tensor("x", {1, 1, 1, 1, 1}, 0, f32_bytes({1}));
  expect_rejected(dims.build(), "n_dims 5 (at most 4)");
  Writer ne;
  ne.tensor("x", {1ull << 63}, 24, {});
  expect_rejected(ne.build(), "ne[0] = 9223372036854775808 is not below 2^63");
  Writer prod;
  prod.tensor("x", {1ull << 32, 1ull << 32}, 24, {});
  expect_rejected(prod.build(), "element count (product of ne) is not below 2^63");
  Writer blk;
  blk.tensor("x", {33}, 8, Bytes(34));  // Q8_0 needs ne[0] % 32 == 0
  expect_rejected(blk.build(), "not a multiple of the Q8_0 block size 32");
  Writer range;
  range.tensor("x", {1}, 0, f32_bytes({1}));
  range.tensors[0].offset = 64;
  Bytes rb = range.build();
  rb.resize(rb.size() - 4 - 64 + 16);  // the data section ends before offset 64
  expect_rejected(rb, "past the end of the");
  Writer size;
  size.tensor("x", {4}, 0, f32_bytes({1, 2, 3}));  // 16 bytes declared, 12 written
  expect_rejected(size.build(), "end past the 12-byte data section");
  Writer over;
  over.tensor("a", {16}, 0, f32_bytes(std::vector<float>(16, 1.0f)));
  over.tensor("b", {4}, 0, f32_bytes({1, 2, 3, 4}));
  over.tensors[1].offset = 32;
  expect_rejected(over.build(), "overlap");
  Writer trunc_data;  // header claims tensors but the data section is missing
  trunc_data.tensor("x", {1}, 0, f32_bytes({1}));
  Bytes tb = trunc_data.build();
  tb.resize(tb.size() - 4);
  while (tb.size() % 32 != 0) tb.pop_back();
  tb.pop_back();
  expect_rejected(tb, "truncated");
}

TEST(Gguf, EmptyAndUnknownTypeTensors) {
  Writer w;
  w.tensor("empty", {0, 7}, 0, {});
  w.tensor("odd", {10}, 200, Bytes{1, 2, 3, 4, 5});  // unknown type 200: listed, size bounded by the next
  w.tensor("after", {1}, 0, f32_bytes({2}));
  const Bytes b = w.build();
  const auto v = parse(b);
  EXPECT_EQ(v.at("empty").size_bytes, 0u);
  EXPECT_EQ(v.at("empty").element_count(), 0u);
  const auto& odd = v.at("odd");
  EXPECT_EQ(odd.type, bitlinear::GgufType::unknown);
  EXPECT_EQ(odd.type_id, 200u);
  EXPECT_FALSE(odd.size_known);
  EXPECT_EQ(odd.size_bytes, 32u);  // up to "after", padding included
  EXPECT_EQ(odd.data[4], 5);
  EXPECT_THROW((void)bitlinear::gguf_to_float(odd), std::invalid_argument);
  // An unknown-size tensor sharing its offset with another is an overlap.
  Writer s;
  s.tensor("u", {4}, 200, Bytes{1, 2, 3, 4});
  s.tensor("f", {1}, 0, f32_bytes({1}));
  s.tensors[1].offset = 0;
  expect_rejected(s.build(), "overlap");
}

TEST(Gguf, LookupAmongManyTensorsAndKeys) {
  Writer w;
  for (int i = 0; i < 3000; ++i) w.kv_u32("k." + std::to_string(i), static_cast<std::uint32_t>(i));
  for (int i = 0; i < 3000; ++i) w.tensor("t." + std::to_string(i), {1}, 24, Bytes{static_cast<std::uint8_t>(i)});
  w.set_alignment(1);
  const Bytes b = w.build();
  const auto v = parse(b);
  for (int i = 0; i < 3000; i += 7) {
    EXPECT_EQ(v.get_u32("k." + std::to_string(i)), static_cast<std::uint32_t>(i));
    EXPECT_EQ(v.at("t." + std::to_string(i)).data[0], static_cast<std::uint8_t>(i));
  }
}

TEST(GgufFile, MappedReadAndStreamedGiveTheSameTensors) {
  const Bytes b = every_type_file(3).build();
  const TempFile f(b);
  const auto mapped = bitlinear::GgufFile::open(f.path);
  const auto read = bitlinear::GgufFile::open(f.path, bitlinear::FileAccess::read);
  std::ifstream in(f.path, std::ios::binary);
  const auto streamed = bitlinear::GgufFile::read(in);
#if BITLINEAR_HAVE_FILE_MAPPING
  EXPECT_TRUE(mapped.is_mapped());
#endif
  EXPECT_FALSE(read.is_mapped());
  for (const bitlinear::GgufFile* file : {&mapped, &read, &streamed}) {
    EXPECT_EQ(bitlinear::gguf_to_float(file->view().at("w")), (std::vector<float>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(file->view().get_string("t.string"), "hello \xff");
  }
  auto moved = bitlinear::GgufFile::open(f.path, bitlinear::FileAccess::read);
  const std::uint8_t* before = moved.view().at("w").data;
  const bitlinear::GgufFile target = std::move(moved);
  EXPECT_EQ(target.view().at("w").data, before);
  EXPECT_THROW((void)bitlinear::GgufFile::open(f.path + ".missing"), std::runtime_error);
  Bytes truncated(b.begin(), b.end() - 1);
  const TempFile t(truncated);
  EXPECT_THROW((void)bitlinear::GgufFile::open(t.path), std::invalid_argument);
  EXPECT_THROW((void)bitlinear::GgufFile::open(t.path, bitlinear::FileAccess::read), std::invalid_argument);
}

// ---- I2_S ----

// HF packed bytes [out/4, in] of a code matrix (transformers' BitNet packing: row i*R + j in bits 2i of row j).
Bytes hf_pack(const std::vector<std::int8_t>& codes, std::size_t out, std::size_t in) {
  const std::size_t r = out / 4;
  Bytes packed(r * in, 0);
  for (std::size_t row = 0; row < out; ++row) {
    for (std::size_t k = 0; k < in; ++k) {
      packed[(row % r) * in + k] = static_cast<std::uint8_t>(packed[(row % r) * in + k] | (codes[row * in + k] + 1) << (2 * (row / r)));
    }
  }
  return packed;
}

// What bitnet.cpp's converter does with an offline-quantized HF module: unpack (field - 1, rows i*R + j), keep
// the codes, and write I2_S with the module's weight_scale (as f32) as the scale.
Bytes converter_i2s_from_hf(const Bytes& packed, std::size_t out, std::size_t in, float weight_scale) {
  const std::size_t r = out / 4;
  std::vector<std::int8_t> codes(out * in);
  for (std::size_t i = 0; i < 4; ++i) {
    for (std::size_t j = 0; j < r; ++j) {
      for (std::size_t k = 0; k < in; ++k) {
        codes[(i * r + j) * in + k] = static_cast<std::int8_t>(((packed[j * in + k] >> (2 * i)) & 3) - 1);
      }
    }
  }
  return g::i2s_pack(codes, weight_scale);
}

Writer bitnet_header(const std::string& arch = "bitnet-b1.58", std::uint64_t blocks = 0) {
  Writer w;
  w.kv_str("general.architecture", arch);
  w.kv_str("general.name", "tiny");
  w.kv_u32(arch + ".block_count", static_cast<std::uint32_t>(blocks));
  w.kv_u32(arch + ".embedding_length", 256);
  w.kv_u32(arch + ".feed_forward_length", 384);
  w.kv_u32(arch + ".attention.head_count", 4);
  w.kv_u32(arch + ".attention.head_count_kv", 2);
  w.kv_u32(arch + ".rope.dimension_count", 64);
  w.kv_f32(arch + ".rope.freq_base", 500000.0f);
  w.kv_f32(arch + ".attention.layer_norm_rms_epsilon", 1e-5f);
  w.kv_u32("general.file_type", 40);
  return w;
}

TEST(GgufI2S, ConverterLayoutLoadsToTheSameLayerAsTheHfImport) {
  // in = 384: one full 256-weight canonical block and a half one; out = 24.
  for (const auto& dims : {std::pair<std::size_t, std::size_t>{24, 384}, {8, 128}, {4, 1024}}) {
    const std::size_t out = dims.first, in = dims.second;
    SCOPED_TRACE(std::to_string(out) + "x" + std::to_string(in));
    const auto codes = random_codes(out * in, static_cast<std::uint32_t>(out * in));
    const float weight_scale = 0.7421875f;  // a bf16 value, as 2B4T stores it
    const Bytes packed = hf_pack(codes, out, in);
    const auto hf = bitlinear::ternary_from_hf_packed(packed.data(), out / 4, in, weight_scale,
                                                      bitlinear::HfScaleConvention::multiply);
    Writer w = bitnet_header();
    w.tensor("blk.0.attn_q.weight", {in, out}, 36, converter_i2s_from_hf(packed, out, in, weight_scale));
    const Bytes b = w.build();
    const auto v = parse(b);
    const auto& t = v.at("blk.0.attn_q.weight");
    EXPECT_EQ(t.type, bitlinear::GgufType::i2_s);
    EXPECT_EQ(t.size_bytes, out * in / 4 + 32);
    EXPECT_EQ(bitlinear::gguf_i2s_scale(t), weight_scale);
    const auto layer = bitlinear::ternary_from_gguf_i2s(t);
    EXPECT_EQ(layer.unpacked_weights(), codes);
    EXPECT_EQ(layer.unpacked_weights(), hf.unpacked_weights());
    EXPECT_TRUE(bitlinear_test::same_bits(layer.weight_scale(), hf.weight_scale()));
    EXPECT_EQ(layer.packed_weights(), hf.packed_weights());
    for (bitlinear::Isa isa : bitlinear_test::runnable_isas()) {
      SCOPED_TRACE(bitlinear_test::isa_label(isa));
      bitlinear::Options o;
      o.isa = isa;
      const auto a = bitlinear::ternary_from_gguf_i2s(t, o);
      const auto x = bitlinear_test::random_floats(3 * in, 11);
      std::vector<float> ya(3 * out), yb(3 * out);
      a.forward(x.data(), 3, ya.data());
      hf.forward(x.data(), 3, yb.data());
      for (std::size_t i = 0; i < ya.size(); ++i) ASSERT_TRUE(bitlinear_test::same_bits(ya[i], yb[i])) << i;
    }
  }
}

TEST(GgufI2S, OneHotBitPositions) {
  // Element 128 i + 32 k + g lives in byte 32 i + g, bits 6 - 2k: set one +1 at a time in a 2 x 256 matrix.
  for (std::size_t e : {0u, 1u, 31u, 32u, 63u, 64u, 95u, 96u, 127u, 128u, 200u, 255u, 256u, 511u}) {
    std::vector<std::int8_t> codes(512, 0);
    codes[e] = 1;
    const Bytes data = g::i2s_pack(codes, 2.0f);
    ASSERT_EQ(data[32 * (e / 128) + e % 32], static_cast<std::uint8_t>(0x55 ^ (3u << (6 - 2 * (e % 128 / 32)))))
        << "the test writer's own layout";
    Writer w = bitnet_header();
    w.tensor("x", {256, 2}, 36, data);
    const Bytes b = w.build();
    const auto layer = bitlinear::ternary_from_gguf_i2s(parse(b).at("x"));
    EXPECT_EQ(layer.unpacked_weights(), codes) << e;
    EXPECT_EQ(layer.weight_scale(), 2.0f);
  }
}

TEST(GgufI2S, Type36IsI2SOnlyInBitnetCppFiles) {
  const auto codes = random_codes(128 * 4, 5);
  const Bytes data = g::i2s_pack(codes, 1.0f);
  for (const std::string arch : {"bitnet", "bitnet-b1.58"}) {
    Writer w;
    w.kv_str("general.architecture", arch);
    w.tensor("x", {128, 4}, 36, data);
    const Bytes b = w.build();
    EXPECT_EQ(parse(b).at("x").type, bitlinear::GgufType::i2_s) << arch;
  }
  {  // Llama3-8B-1.58 and Falcon3 files say "llama" and file type 40
    Writer w;
    w.kv_str("general.architecture", "llama");
    w.kv_u32("general.file_type", 40);
    w.tensor("x", {128, 4}, 36, data);
    const Bytes b = w.build();
    EXPECT_EQ(parse(b).at("x").type, bitlinear::GgufType::i2_s);
  }
  {  // neither: listed as unknown, and the loader refuses the file with the reason
    Writer w;
    w.kv_str("general.architecture", "llama");
    w.kv_u32("general.file_type", 7);
    w.tensor("x", {128, 4}, 36, data);
    const Bytes b = w.build();
    const auto v = parse(b);
    EXPECT_EQ(v.at("x").type, bitlinear::GgufType::unknown);
    EXPECT_FALSE(v.at("x").size_known);
    EXPECT_THROW((void)bitlinear::ternary_from_gguf_i2s(v.at("x")), std::invalid_argument);
    try {
      (void)bitlinear::load_gguf_bitnet_layers(v);
      ADD_FAILURE();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("cannot be told apart"), std::string::npos) << e.what();
    }
  }
  {  // a bitnet.cpp file whose type-36 tensor spans upstream's 18 bytes per 32 weights: not I2_S
    Writer w = bitnet_header();
    w.tensor("x", {128, 4}, 36, Bytes(128 * 4 / 32 * 18, 0x55));
    w.tensor("y", {1}, 0, f32_bytes({1}));
    expect_rejected(w.build(), "more than alignment padding: the file's type 36 cannot be told apart");
  }
  {  // a bitnet.cpp file whose type-36 tensor is too short for I2_S
    Writer w = bitnet_header();
    w.tensor("x", {128, 4}, 36, Bytes(data.begin(), data.end() - 20));
    expect_rejected(w.build(), "read as bitnet.cpp's I2_S");
  }
}

TEST(GgufI2S, BadTensorsAreRefusedByName) {
  const auto codes = random_codes(128 * 4, 9);
  auto file_with = [&](Bytes data, std::vector<std::uint64_t> ne = {128, 4}) {
    Writer w = bitnet_header();
    w.tensor("blk.0.attn_k.weight", std::move(ne), 36, std::move(data));
    return w.build();
  };
  auto expect_import_rejected = [&](const Bytes& b, const std::string& needle) {
    const auto v = parse(b);
    try {
      (void)bitlinear::ternary_from_gguf_i2s(v.at("blk.0.attn_k.weight"));
      ADD_FAILURE() << needle;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("blk.0.attn_k.weight"), std::string::npos) << e.what();
    }
  };
  Bytes field3 = g::i2s_pack(codes, 1.0f);
  field3[32 + 5] = static_cast<std::uint8_t>(field3[32 + 5] | 0x30);  // row 1 (32 bytes a row), k = 1, g = 5
  expect_import_rejected(file_with(field3), "weight [1][37] has field value 3");
  for (float bad : {-1.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(), 1e-39f}) {
    expect_import_rejected(file_with(g::i2s_pack(codes, bad)), "must be finite and positive");
  }
  std::vector<std::int8_t> c64(64 * 4, 1);
  expect_import_rejected(file_with(g::i2s_pack(c64, 1.0f), {64, 4}), "is not a multiple of 128");
  expect_import_rejected(file_with(g::i2s_pack(codes, 1.0f), {128, 2, 2}), "non-empty 2-D tensor");
  {
    const Bytes b = file_with(g::i2s_pack(codes, 1.0f));
    bitlinear::GgufImportOptions o;
    o.max_weight_bytes = 100;
    try {
      (void)bitlinear::ternary_from_gguf_i2s(parse(b).at("blk.0.attn_k.weight"), o);
      ADD_FAILURE();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("max_weight_bytes = 100"), std::string::npos) << e.what();
    }
  }
  // A zero scale (bitnet.cpp's C quantizer on an all-zero tensor) imports as zero codes.
  const Bytes z = file_with(g::i2s_pack(codes, 0.0f));
  const auto layer = bitlinear::ternary_from_gguf_i2s(parse(z).at("blk.0.attn_k.weight"));
  EXPECT_EQ(layer.unpacked_weights(), std::vector<std::int8_t>(codes.size(), 0));
}

TEST(GgufI2S, LoadsAWholeModelWithNamesConfigAndViews) {
  const std::size_t hidden = 256, ffn = 384, kv = 128;
  Writer w = bitnet_header("bitnet-b1.58", 2);
  std::vector<float> norm(hidden);
  for (std::size_t i = 0; i < hidden; ++i) norm[i] = static_cast<float>(i) / 64.0f;
  Bytes emb;
  for (std::size_t i = 0; i < hidden * 8; ++i) g::put(emb, 0x3C00, 2);  // F16 1.0
  w.tensor("token_embd.weight", {hidden, 8}, 1, emb);
  struct Proj {
    const char* name;
    std::size_t in, out;
  };
  const Proj projs[] = {{"attn_q", hidden, hidden}, {"attn_k", hidden, kv},  {"attn_v", hidden, kv},
                        {"attn_output", hidden, hidden}, {"ffn_gate", hidden, ffn}, {"ffn_up", hidden, ffn},
                        {"ffn_down", ffn, hidden}};
  std::vector<std::vector<std::int8_t>> all_codes;
  std::uint32_t seed = 100;
  for (int b = 0; b < 2; ++b) {
    w.tensor("blk." + std::to_string(b) + ".attn_norm.weight", {hidden}, 0, f32_bytes(norm));
    for (const Proj& p : projs) {
      all_codes.push_back(random_codes(p.in * p.out, seed++));
      w.tensor("blk." + std::to_string(b) + "." + p.name + ".weight", {p.in, p.out}, 36,
               g::i2s_pack(all_codes.back(), 0.5f + static_cast<float>(seed) / 256.0f));
    }
  }
  w.tensor("output_norm.weight", {hidden}, 0, f32_bytes(norm));
  const Bytes bytes = w.build();
  const TempFile f(bytes);
  const auto file = bitlinear::GgufFile::open(f.path);
  const auto model = bitlinear::load_gguf_bitnet_layers(file);  // releases each imported tensor's pages
  EXPECT_EQ(model.config.architecture, "bitnet-b1.58");
  EXPECT_EQ(model.config.name, "tiny");
  // Released pages stay readable (read again from the file), and the same as the file's bytes.
  for (const bitlinear::GgufTensor& t : file.view().tensors()) {
    const std::uint8_t* expected = bytes.data() + file.view().data_offset() + t.offset;
    EXPECT_EQ(std::memcmp(t.data, expected, static_cast<std::size_t>(t.size_bytes)), 0) << t.name;
  }
  const auto again = bitlinear::load_gguf_bitnet_layers(file.view());
  ASSERT_EQ(again.layers.size(), 14u);
  EXPECT_EQ(again.layers[13].layer.unpacked_weights(), model.layers[13].layer.unpacked_weights());
  EXPECT_EQ(model.config.block_count, 2u);
  EXPECT_EQ(model.config.embedding_length, 256u);
  EXPECT_EQ(model.config.feed_forward_length, 384u);
  EXPECT_EQ(model.config.head_count, 4u);
  EXPECT_EQ(model.config.head_count_kv, 2u);
  EXPECT_EQ(model.config.rope_dimension_count, 64u);
  EXPECT_EQ(model.config.rope_freq_base, 500000.0f);
  EXPECT_EQ(model.config.rms_norm_eps, 1e-5f);
  EXPECT_EQ(model.config.file_type, 40u);
  ASSERT_EQ(model.layers.size(), 14u);
  std::size_t i = 0;
  seed = 100;
  for (int b = 0; b < 2; ++b) {
    for (const Proj& p : projs) {
      ++seed;
      const std::string name = "blk." + std::to_string(b) + "." + p.name + ".weight";
      const auto& layer = model.layer(name);
      EXPECT_EQ(layer.in_features(), p.in);
      EXPECT_EQ(layer.out_features(), p.out);
      EXPECT_EQ(layer.unpacked_weights(), all_codes[i++]) << name;
      EXPECT_EQ(layer.weight_scale(), 0.5f + static_cast<float>(seed) / 256.0f);
      const std::string hf = bitlinear::gguf_to_hf_name(name);
      EXPECT_EQ(&model.layer(hf.substr(0, hf.size() - 7)), &layer) << hf;
    }
  }
  EXPECT_EQ(model.layers[0].hf_name, "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(model.layers[3].hf_name, "model.layers.0.self_attn.o_proj");
  EXPECT_EQ(model.layers[6].hf_name, "model.layers.0.mlp.down_proj");
  EXPECT_EQ(model.tensors.size(), 4u);
  EXPECT_EQ(bitlinear::gguf_to_float(model.tensor("output_norm.weight")), norm);
  EXPECT_EQ(model.tensor("token_embd.weight").type, bitlinear::GgufType::f16);
  EXPECT_EQ(bitlinear::gguf_to_float(model.tensor("token_embd.weight"))[17], 1.0f);
  EXPECT_EQ(bitlinear::gguf_to_hf_name("blk.1.attn_sub_norm.weight"), "model.layers.1.self_attn.attn_sub_norm.weight");
  EXPECT_EQ(bitlinear::gguf_to_hf_name("token_embd.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(bitlinear::gguf_to_hf_name("blk.01.attn_q.weight"), "");
  EXPECT_EQ(bitlinear::gguf_to_hf_name("blk.x.attn_q.weight"), "");
  EXPECT_EQ(model.find_layer("blk.9.attn_q.weight"), nullptr);
  EXPECT_EQ(model.find_layer(""), nullptr);
  EXPECT_THROW((void)model.layer("nope"), std::invalid_argument);

  // The budget and a missing projection are refused before anything is built.
  bitlinear::GgufLoadOptions small;
  small.max_total_bytes = 1000;
  EXPECT_THROW((void)bitlinear::load_gguf_bitnet_layers(file.view(), small), std::invalid_argument);
  Writer missing = bitnet_header("bitnet-b1.58", 3);
  missing.tensor("blk.0.attn_q.weight", {128, 4}, 36, g::i2s_pack(random_codes(512, 1), 1.0f));
  const Bytes mb = missing.build();
  try {
    (void)bitlinear::load_gguf_bitnet_layers(parse(mb));
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("\"blk.0.attn_k.weight\" is missing"), std::string::npos) << e.what();
  }
}

}  // namespace

namespace {

// Files written by bitnet.cpp's own converter function and gguf-py writer (tests/data/README.md).
#ifdef BITLINEAR_TEST_DATA_DIR
TEST(GgufFixture, BitnetCppConverterFileMatchesTheHfImport) {
  const std::string dir = BITLINEAR_TEST_DATA_DIR;
  const auto gguf = bitlinear::GgufFile::open(dir + "/tiny_i2s.gguf");
  const auto hf = bitlinear::SafetensorsFile::open(dir + "/tiny_i2s_hf.safetensors");
  const auto model = bitlinear::load_gguf_bitnet_layers(gguf);
  EXPECT_EQ(gguf.view().version(), 3u);
  EXPECT_EQ(model.config.architecture, "bitnet-b1.58");
  EXPECT_EQ(model.config.name, "bitlinear-tiny-i2s");
  EXPECT_EQ(model.config.file_type, 40u);
  EXPECT_EQ(model.config.block_count, 1u);
  EXPECT_EQ(model.config.embedding_length, 128u);
  EXPECT_EQ(model.config.feed_forward_length, 256u);
  EXPECT_EQ(model.config.head_count, 2u);
  EXPECT_EQ(model.config.head_count_kv, 1u);
  EXPECT_EQ(model.config.rope_dimension_count, 64u);
  EXPECT_EQ(model.config.vocab_size, 16u);
  EXPECT_EQ(model.config.rope_freq_base, 500000.0f);
  EXPECT_EQ(model.config.rms_norm_eps, 1e-5f);
  ASSERT_EQ(model.layers.size(), 7u);
  for (const bitlinear::GgufLayer& l : model.layers) {
    SCOPED_TRACE(l.gguf_name);
    const auto reference = bitlinear::ternary_from_hf_checkpoint(hf.view(), l.hf_name, bitlinear::HfScaleConvention::multiply);
    EXPECT_EQ(l.layer.unpacked_weights(), reference.unpacked_weights());
    EXPECT_TRUE(bitlinear_test::same_bits(l.layer.weight_scale(), reference.weight_scale()));
    const auto x = bitlinear_test::random_floats(5 * l.layer.in_features(), 3);
    std::vector<float> ya(5 * l.layer.out_features()), yb(ya.size());
    l.layer.forward(x.data(), 5, ya.data());
    reference.forward(x.data(), 5, yb.data());
    for (std::size_t i = 0; i < ya.size(); ++i) ASSERT_TRUE(bitlinear_test::same_bits(ya[i], yb[i])) << i;
  }
  const auto emb = bitlinear::gguf_to_float(model.tensor("token_embd.weight"));
  EXPECT_EQ(emb, bitlinear::safetensors_to_float(hf.view().at("model.embed_tokens.weight")));
  EXPECT_EQ(model.tensor("token_embd.weight").ne[0], 128u);
  EXPECT_EQ(model.tensor("token_embd.weight").ne[1], 16u);
  EXPECT_EQ(bitlinear::gguf_to_float(model.tensor("output_norm.weight")).size(), 128u);
}
#endif

}  // namespace
