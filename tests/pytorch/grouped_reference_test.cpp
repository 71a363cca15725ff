// GroupedLinear::from_float against PyTorch float32 (cases written by make_grouped_reference.py; path in
// BITLINEAR_PYTORCH_GROUPED_REFERENCE): every group scale bit for bit and every weight code exactly, for the 2-bit,
// compact and binary forms, group sizes 32..256 and one scale per row (odd in_features included).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../test_util.hpp"

namespace {

struct Case {
  std::uint32_t kind = 0, out = 0, in = 0, group = 0;
  std::vector<float> w, scales;
  std::vector<std::int8_t> codes;
};

template <class T>
void read_into(std::ifstream& in, std::vector<T>& v, std::size_t n) {
  v.resize(n);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(T)));
  if (!in) throw std::runtime_error("truncated grouped reference file");
}

std::vector<Case> load_cases() {
  const char* path = std::getenv("BITLINEAR_PYTORCH_GROUPED_REFERENCE");
  if (path == nullptr) {
    throw std::runtime_error("set BITLINEAR_PYTORCH_GROUPED_REFERENCE to make_grouped_reference.py's output");
  }
  std::ifstream in(path, std::ios::binary);
  char magic[8];
  std::uint32_t count = 0;
  in.read(magic, 8);
  in.read(reinterpret_cast<char*>(&count), sizeof count);
  if (!in || std::memcmp(magic, "BLGREF01", 8) != 0) throw std::runtime_error(std::string("bad reference file ") + path);
  std::vector<Case> cases(count);
  for (Case& c : cases) {
    std::uint32_t header[4];
    in.read(reinterpret_cast<char*>(header), sizeof header);
    c.kind = header[0], c.out = header[1], c.in = header[2], c.group = header[3];
    read_into(in, c.w, std::size_t{c.out} * c.in);
    read_into(in, c.codes, std::size_t{c.out} * c.in);
    read_into(in, c.scales, std::size_t{c.out} * (c.in / c.group));
  }
  return cases;
}

template <class Format>
void expect_matches(const Case& c) {
  const auto layer = bitlinear::GroupedLinear<Format>::from_float(c.w.data(), c.out, c.in, c.group);
  ASSERT_EQ(layer.group_scales().size(), c.scales.size());
  for (std::size_t i = 0; i < c.scales.size(); ++i) {
    ASSERT_TRUE(bitlinear_test::same_bits(layer.group_scales()[i], c.scales[i]))
        << Format::name << " " << c.out << "x" << c.in << " group " << c.group << " scale " << i << ": "
        << layer.group_scales()[i] << " vs PyTorch " << c.scales[i];
  }
  const std::vector<std::int8_t> codes = layer.unpacked_weights();
  for (std::size_t i = 0; i < codes.size(); ++i) {
    ASSERT_EQ(codes[i], c.codes[i]) << Format::name << " " << c.out << "x" << c.in << " group " << c.group
                                    << " weight " << i << " = " << c.w[i];
  }
}

TEST(PyTorchGroupedReference, FromFloatEqualsPyTorchBitForBit) {
  const std::vector<Case> cases = load_cases();
  ASSERT_GT(cases.size(), 10u);
  for (const Case& c : cases) {
    if (c.kind == 0) {
      expect_matches<bitlinear::Ternary>(c);
      expect_matches<bitlinear::TernaryCompact>(c);
    } else {
      expect_matches<bitlinear::Binary>(c);
    }
    if (HasFatalFailure()) return;
  }
}

}  // namespace
