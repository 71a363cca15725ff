// GGUF layers built on a caller's ThreadPool (GgufImportOptions::pool): every GGUF type the importers take gives
// bit-identical layers with no pool and with pools of 1, 2 and 3 threads (single tensors and a whole model through
// load_gguf_layers), and an invalid row (I2_S field 3, a non-finite block scale, non-canonical grouped codes) gives
// the same error, naming the first invalid row, with or without a pool. Its own binary, so that the
// ThreadSanitizer leg (.ci/steps/30-tsan.sh) runs it.
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/io/gguf_grouped_import.hpp>
#include <bitlinear/io/gguf_import.hpp>
#include <bitlinear/io/gguf_model.hpp>
#include <bitlinear/io/layer_builder.hpp>
#include <bitlinear/thread_pool.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "gguf_writer.hpp"
#include "test_util.hpp"

namespace {

using bitlinear::GgufBlockType;
using bitlinear_test::invalid_argument_message;

// Pools of 1, 2 and 3 threads, after "no pool" (null).
std::vector<std::unique_ptr<bitlinear::ThreadPool>> make_pools() {
  std::vector<std::unique_ptr<bitlinear::ThreadPool>> pools;
  pools.push_back(nullptr);
  for (std::size_t n : {1, 2, 3}) pools.push_back(std::make_unique<bitlinear::ThreadPool>(n));
  return pools;
}

std::size_t scale_offset(GgufBlockType type) {
  switch (type) {
    case GgufBlockType::tq2_0: return 64;
    case GgufBlockType::tq1_0: return 52;
    case GgufBlockType::ptq1_0: return 26;
    default: return 0;
  }
}

// rows x in of `type`: random code bytes, each block's d a random finite fp16.
gguf_test::Bytes random_blocks(GgufBlockType type, std::size_t rows, std::size_t in, std::mt19937& rng) {
  const auto info = bitlinear::gguf_block_info(type);
  gguf_test::Bytes bytes(rows * bitlinear::gguf_block_row_bytes(type, in));
  for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
  for (std::size_t b = 0; b < bytes.size() / info.block_bytes; ++b) {
    std::uint16_t h;
    do h = static_cast<std::uint16_t>(rng()); while (((h >> 10) & 0x1F) == 0x1F);
    bytes[b * info.block_bytes + scale_offset(type)] = static_cast<std::uint8_t>(h);
    bytes[b * info.block_bytes + scale_offset(type) + 1] = static_cast<std::uint8_t>(h >> 8);
  }
  return bytes;
}

// Random I2_S bytes of rows x in (fields 0..2) with scale 0.75.
gguf_test::Bytes random_i2s(std::size_t rows, std::size_t in, std::mt19937& rng) {
  std::vector<std::int8_t> codes(rows * in);
  for (auto& c : codes) c = static_cast<std::int8_t>(static_cast<int>(rng() % 3) - 1);
  return gguf_test::i2s_pack(codes, 0.75f);
}

bitlinear::GgufFile one_tensor_file(std::uint32_t type_id, std::size_t rows, std::size_t in, const gguf_test::Bytes& data,
                                    const char* arch = "llama") {
  gguf_test::Writer w;
  w.kv_str("general.architecture", arch);
  w.tensor("blk.0.ffn_down.weight", {in, rows}, type_id, data);
  return bitlinear::GgufFile::from_bytes(w.build());
}

template <class Layer>
void expect_same_layer(const Layer& a, const Layer& b, const std::string& what) {
  ASSERT_EQ(a.out_features(), b.out_features()) << what;
  ASSERT_EQ(a.in_features(), b.in_features()) << what;
  EXPECT_TRUE(a.packed_weights() == b.packed_weights()) << what << ": codes differ";
  if constexpr (std::is_same<Layer, bitlinear::TernaryLinear>::value) {
    const float sa = a.weight_scale(), sb = b.weight_scale();
    EXPECT_EQ(std::memcmp(&sa, &sb, sizeof sa), 0) << what << ": weight scales differ";
  } else {
    ASSERT_EQ(a.group_scales().size(), b.group_scales().size()) << what;
    EXPECT_EQ(std::memcmp(a.group_scales().data(), b.group_scales().data(), a.group_scales().size() * sizeof(float)), 0)
        << what << ": group scales differ";
  }
}

bitlinear::GgufImportOptions with_pool(bitlinear::ThreadPool* pool) {
  bitlinear::GgufImportOptions options;
  options.layer.isa = bitlinear::Isa::scalar;
  options.pool = pool;
  return options;
}

struct TypeCase {
  GgufBlockType type;
  std::size_t in;  // multiples of the block that leave canonical padding too (e.g. 640 = 1.25 binary blocks)
};
const TypeCase kTypes[] = {{GgufBlockType::tq2_0, 768},  {GgufBlockType::tq1_0, 768},   {GgufBlockType::q1_0, 640},
                           {GgufBlockType::q2_0, 320},   {GgufBlockType::pq2_0, 640},   {GgufBlockType::ptq1_0, 640},
                           {GgufBlockType::q2_0_g128, 384}};

template <class Format>
void expect_grouped_same_for_every_pool(const TypeCase& c, std::size_t rows) {
  std::mt19937 rng(static_cast<std::uint32_t>(rows * 31 + c.in));
  const auto data = random_blocks(c.type, rows, c.in, rng);
  const auto file = one_tensor_file(bitlinear::gguf_block_info(c.type).ggml_type, rows, c.in, data);
  const auto& t = file.view().at("blk.0.ffn_down.weight");
  const auto serial = bitlinear::grouped_from_gguf<Format>(t, with_pool(nullptr));
  for (const auto& pool : make_pools()) {
    const auto layer = bitlinear::grouped_from_gguf<Format>(t, with_pool(pool.get()));
    expect_same_layer(serial, layer, std::string(bitlinear::gguf_block_info(c.type).name) + " rows " +
                                         std::to_string(rows) + " threads " + std::to_string(pool ? pool->size() : 0));
  }
}

TEST(GgufParallelLoad, GroupedTypesAreBitIdenticalForEveryPool) {
  // 1 row, fewer rows than threads, and many rows (several tasks: about 64 KiB of source rows each).
  for (const TypeCase& c : kTypes) {
    for (std::size_t rows : {std::size_t{1}, std::size_t{2}, std::size_t{700}}) {
      const auto info = bitlinear::gguf_block_info(c.type);
      if (info.binary) {
        expect_grouped_same_for_every_pool<bitlinear::Binary>(c, rows);
      } else {
        expect_grouped_same_for_every_pool<bitlinear::Ternary>(c, rows);
        if (c.type == GgufBlockType::tq1_0 || c.type == GgufBlockType::ptq1_0) {
          expect_grouped_same_for_every_pool<bitlinear::TernaryCompact>(c, rows);
        }
      }
    }
  }
}

TEST(GgufParallelLoad, I2sIsBitIdenticalForEveryPool) {
  for (std::size_t in : {std::size_t{128}, std::size_t{384}, std::size_t{2560}}) {
    std::mt19937 rng(static_cast<std::uint32_t>(in));
    const std::size_t rows = 300;
    const auto file = one_tensor_file(36, rows, in, random_i2s(rows, in, rng), "bitnet-b1.58");
    const auto& t = file.view().at("blk.0.ffn_down.weight");
    for (bitlinear::Isa isa : {bitlinear::Isa::scalar, bitlinear::Isa::automatic}) {
      bitlinear::GgufImportOptions serial_options = with_pool(nullptr);
      serial_options.layer.isa = isa;
      const auto serial = bitlinear::ternary_from_gguf_i2s(t, serial_options);
      for (const auto& pool : make_pools()) {
        bitlinear::GgufImportOptions options = with_pool(pool.get());
        options.layer.isa = isa;
        expect_same_layer(serial, bitlinear::ternary_from_gguf_i2s(t, options),
                          "I2_S in " + std::to_string(in) + " threads " + std::to_string(pool ? pool->size() : 0));
      }
    }
  }
}

TEST(GgufParallelLoad, I2sFieldThreeNamesTheFirstBadRowForEveryPool) {
  const std::size_t rows = 2000, in = 256;  // 64-byte source rows: many tasks
  std::mt19937 rng(5);
  auto data = random_i2s(rows, in, rng);
  // Field 3 in rows 1500, 1501 and 1999 (late rows: the tasks of other threads run first), then also row 3.
  for (std::size_t r : {std::size_t{1500}, std::size_t{1501}, std::size_t{1999}}) data[r * in / 4 + 5] |= 0xC0;
  for (int pass = 0; pass < 2; ++pass) {
    const auto file = one_tensor_file(36, rows, in, data, "bitnet-b1.58");
    const auto& t = file.view().at("blk.0.ffn_down.weight");
    const std::string want = invalid_argument_message([&] { bitlinear::ternary_from_gguf_i2s(t, with_pool(nullptr)); });
    EXPECT_NE(want.find(pass == 0 ? "weight [1500][" : "weight [3]["), std::string::npos) << want;
    for (const auto& pool : make_pools()) {
      for (int repeat = 0; repeat < 5; ++repeat) {
        EXPECT_EQ(invalid_argument_message([&] { bitlinear::ternary_from_gguf_i2s(t, with_pool(pool.get())); }), want);
      }
    }
    data[3 * in / 4 + 7] |= 0x03;
  }
}

TEST(GgufParallelLoad, NonFiniteScaleNamesTheFirstBadRowForEveryPool) {
  for (const TypeCase& c : kTypes) {
    const auto info = bitlinear::gguf_block_info(c.type);
    const std::size_t rows = 900;
    std::mt19937 rng(9);
    auto data = random_blocks(c.type, rows, c.in, rng);
    const std::size_t row_bytes = bitlinear::gguf_block_row_bytes(c.type, c.in);
    // An infinite d in the last block of row 850 and a NaN in the first block of row 851.
    const std::size_t at_inf = 850 * row_bytes + (c.in / info.block_weights - 1) * info.block_bytes + scale_offset(c.type);
    data[at_inf] = 0x00, data[at_inf + 1] = 0x7C;
    const std::size_t at_nan = 851 * row_bytes + scale_offset(c.type);
    data[at_nan] = 0x01, data[at_nan + 1] = 0xFE;
    const auto file = one_tensor_file(info.ggml_type, rows, c.in, data);
    const auto& t = file.view().at("blk.0.ffn_down.weight");
    const auto build = [&](bitlinear::ThreadPool* pool) {
      if (info.binary) {
        bitlinear::grouped_from_gguf<bitlinear::Binary>(t, with_pool(pool));
      } else {
        bitlinear::grouped_from_gguf<bitlinear::Ternary>(t, with_pool(pool));
      }
    };
    const std::string want = invalid_argument_message([&] { build(nullptr); });
    const std::size_t index = 850 * (c.in / info.block_weights) + c.in / info.block_weights - 1;
    EXPECT_NE(want.find("group scale [" + std::to_string(index) + "]"), std::string::npos) << info.name << ": " << want;
    for (const auto& pool : make_pools()) {
      for (int repeat = 0; repeat < 3; ++repeat) {
        EXPECT_EQ(invalid_argument_message([&] { build(pool.get()); }), want) << info.name;
      }
    }
  }
}

// The builder's canonical check (no GGUF type can produce non-canonical codes: every byte decodes): rows whose
// padding is not code 0 are reported as GroupedLinear::from_packed_rows reports them, for every pool.
template <class Format>
void expect_noncanonical_rows_named_alike(std::size_t in) {
  const std::size_t rows = 3000, row_bytes = Format::packed_row_bytes(in);
  // A last byte with padding fields that are not code 0: all fields 3 (2-bit), all bits set (binary), or a byte
  // that is not one of the 243 compact values.
  const auto bad = static_cast<std::uint8_t>(std::is_same<Format, bitlinear::TernaryCompact>::value ? 0x3F : 0xFF);
  const auto fill = [&](std::size_t j, std::uint8_t* row, float* scales) {
    std::memset(row, Format::zero_byte, row_bytes);
    scales[0] = 0.5f;
    if (j == 2400 || j == 2401 || j == 2999) row[row_bytes - 1] = bad;
  };
  const std::string want = invalid_argument_message(
      [&] { bitlinear::GroupedLinear<Format>::from_packed_rows(fill, rows, in, in, nullptr, bitlinear::Options{}); });
  EXPECT_NE(want.find("(in row 2400 of the matrix)"), std::string::npos) << want;
  for (const auto& pool : make_pools()) {
    for (int repeat = 0; repeat < 3; ++repeat) {
      EXPECT_EQ(invalid_argument_message([&] {
                  bitlinear::detail::GroupedLayerBuilder<Format>::build(fill, rows, in, in, nullptr,
                                                                        bitlinear::Options{}, 7, pool.get());
                }),
                want);
    }
  }
}

TEST(GgufParallelLoad, NonCanonicalRowsNameTheFirstBadRowForEveryPool) {
  expect_noncanonical_rows_named_alike<bitlinear::Ternary>(100);
  expect_noncanonical_rows_named_alike<bitlinear::Binary>(100);
  expect_noncanonical_rows_named_alike<bitlinear::TernaryCompact>(100);
}

// A whole model through load_gguf_layers with options.import.pool: every projection of every block type.
TEST(GgufParallelLoad, ModelLoadIsBitIdenticalForEveryPool) {
  struct P {
    const char* name;
    GgufBlockType type;
    std::size_t rows, in;
  };
  const P projections[] = {{"blk.0.attn_q.weight", GgufBlockType::tq2_0, 300, 512},
                           {"blk.0.attn_k.weight", GgufBlockType::tq1_0, 260, 512},
                           {"blk.0.attn_v.weight", GgufBlockType::ptq1_0, 270, 384},
                           {"blk.0.attn_output.weight", GgufBlockType::q2_0, 410, 320},
                           {"blk.0.ffn_gate.weight", GgufBlockType::q1_0, 530, 640},
                           {"blk.0.ffn_up.weight", GgufBlockType::pq2_0, 220, 256},
                           {"blk.0.ffn_down.weight", GgufBlockType::q2_0_g128, 170, 384}};
  std::mt19937 rng(77);
  gguf_test::Writer w;
  w.kv_str("general.architecture", "llama");
  w.kv_u32("llama.block_count", 1);
  for (const P& p : projections) {
    w.tensor(p.name, {p.in, p.rows}, bitlinear::gguf_block_info(p.type).ggml_type, random_blocks(p.type, p.rows, p.in, rng));
  }
  const auto file = bitlinear::GgufFile::from_bytes(w.build());
  for (bool compact : {true, false}) {
    bitlinear::GgufModelLoadOptions serial_options;
    serial_options.tq1_0_compact = serial_options.ptq1_0_compact = compact;
    const auto serial = bitlinear::load_gguf_layers(file, serial_options);
    ASSERT_EQ(serial.layers.size(), 7u);
    for (const auto& pool : make_pools()) {
      bitlinear::GgufModelLoadOptions options = serial_options;
      options.import.pool = pool.get();
      const auto model = bitlinear::load_gguf_layers(file, options);
      ASSERT_EQ(model.layers.size(), serial.layers.size());
      for (std::size_t i = 0; i < model.layers.size(); ++i) {
        const auto& a = serial.layers[i];
        const auto& b = model.layers[i];
        ASSERT_EQ(a.layer.index(), b.layer.index()) << a.gguf_name;
        std::visit(
            [&](const auto& la) {
              using L = std::decay_t<decltype(la)>;
              expect_same_layer(la, std::get<L>(b.layer),
                                a.gguf_name + " threads " + std::to_string(pool ? pool->size() : 0));
            },
            a.layer);
      }
    }
  }
}

}  // namespace
