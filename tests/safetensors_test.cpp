// The safetensors reader and the Hugging Face import on hand-built files: what is accepted, and every
// malformed-header rule. (The comparison against PyTorch lives in tests/interop/.)
#include <bitlinear/io/hf_import.hpp>
#include <bitlinear/io/safetensors.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <random>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes make_file(const std::string& header, const Bytes& data, std::uint64_t declared_length = ~std::uint64_t{0}) {
  const std::uint64_t n = declared_length == ~std::uint64_t{0} ? header.size() : declared_length;
  Bytes b;
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void expect_rejected(const Bytes& file, const std::string& needle) {
  SCOPED_TRACE(needle);
  try {
    (void)bitlinear::SafetensorsView::parse(file.data(), file.size());
    ADD_FAILURE() << "accepted a malformed file";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

void expect_header_rejected(const std::string& header, const Bytes& data, const std::string& needle) {
  expect_rejected(make_file(header, data), needle);
}

TEST(Safetensors, ParsesTensorsMetadataAndEscapes) {
  const std::string header =
      R"({"__metadata__":{"format":"pt","note":"caf\u00e9 \ud83d\ude00 \"q\""},)"
      R"( "a.weight" : {"dtype":"U8","shape":[2,3],"data_offsets":[0,6]},)"
      R"("scale":{"data_offsets":[6,10],"shape":[],"dtype":"F32"},"empty":{"dtype":"F16","shape":[0,5],"data_offsets":[10,10]}}   )";
  Bytes data = {1, 2, 3, 4, 5, 6, 0x00, 0x00, 0x80, 0x3F};  // 1.0f little-endian
  const Bytes file = make_file(header, data);
  const auto view = bitlinear::SafetensorsView::parse(file.data(), file.size());
  ASSERT_EQ(view.tensors().size(), 3u);
  const auto& a = view.at("a.weight");
  EXPECT_EQ(a.dtype, "U8");
  EXPECT_EQ(a.shape, (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(a.size_bytes, 6u);
  EXPECT_EQ(a.data[5], 6);
  EXPECT_EQ(a.data, file.data() + 8 + header.size());  // a view, not a copy
  const auto& s = view.at("scale");
  EXPECT_EQ(s.element_count(), 1u);
  EXPECT_EQ(bitlinear::safetensors_to_float(s), std::vector<float>{1.0f});
  EXPECT_EQ(view.at("empty").size_bytes, 0u);
  ASSERT_EQ(view.metadata().size(), 2u);
  EXPECT_EQ(view.metadata()[1].second, "caf\xC3\xA9 \xF0\x9F\x98\x80 \"q\"");
  EXPECT_EQ(view.find("missing"), nullptr);
  EXPECT_THROW((void)view.at("missing"), std::invalid_argument);
}

TEST(Safetensors, HalfAndBfloatConvertExactly) {
  // F16: 1.0, -2.0, smallest subnormal 2^-24, largest subnormal, +inf, 65504. BF16: 1.0, -0.5.
  const std::string header = R"({"h":{"dtype":"F16","shape":[6],"data_offsets":[0,12]},)"
                             R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]},)"
                             R"("d":{"dtype":"F64","shape":[2],"data_offsets":[16,32]}})";
  Bytes data = {0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0xFF, 0x03, 0x00, 0x7C, 0xFF, 0x7B,
                0x80, 0x3F, 0x00, 0xBF};
  const double d[2] = {0.1, 1e300};
  for (double v : d) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, 8);
    for (int i = 0; i < 8; ++i) data.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
  }
  const Bytes file = make_file(header, data);
  const auto view = bitlinear::SafetensorsView::parse(file.data(), file.size());
  const std::vector<float> h = bitlinear::safetensors_to_float(view.at("h"));
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], std::ldexp(1.0f, -24));
  EXPECT_EQ(h[3], std::ldexp(1023.0f, -24));
  EXPECT_EQ(h[4], std::numeric_limits<float>::infinity());
  EXPECT_EQ(h[5], 65504.0f);
  EXPECT_EQ(bitlinear::safetensors_to_float(view.at("b")), (std::vector<float>{1.0f, -0.5f}));
  const std::vector<float> f = bitlinear::safetensors_to_float(view.at("d"));
  EXPECT_EQ(f[0], 0.1f);
  EXPECT_EQ(f[1], std::numeric_limits<float>::infinity());
}

TEST(Safetensors, RejectsBadFraming) {
  expect_rejected(Bytes{1, 2, 3}, "less than the 8-byte header length");
  expect_rejected(make_file("{}", {}, 3), "only 2 bytes follow");
  expect_rejected(make_file("{}", {}, 200'000'000), "exceeds the 100 MB limit");
  expect_rejected(make_file("{}", {}, ~std::uint64_t{0} - 1), "exceeds the 100 MB limit");
  EXPECT_NO_THROW((void)bitlinear::SafetensorsView::parse(make_file("{}", {}).data(), 10));
}

TEST(Safetensors, RejectsMalformedJson) {
  const Bytes none;
  expect_header_rejected("[]", none, "must be a JSON object");
  expect_header_rejected("", none, "must be a JSON object");
  expect_header_rejected("{} x", none, "unexpected bytes after");
  expect_header_rejected("{\"a\":", none, "entry must be an object");
  expect_header_rejected("{\"a", none, "unterminated string");
  expect_header_rejected("{\"a\\q\":1}", none, "unknown escape");
  expect_header_rejected("{\"\\ud800\":1}", none, "unpaired high surrogate");
  expect_header_rejected("{\"\\udc00\":1}", none, "unpaired low surrogate");
  expect_header_rejected("{\"\\u12\"}", none, "bad hex digit");
  expect_header_rejected(std::string("{\"a\x01\":1}"), none, "raw control character");
  expect_header_rejected("{\"a\":{\"dtype\":\"U8\",\"shape\":[01],\"data_offsets\":[0,1]}}", Bytes{0}, "leading zero");
  expect_header_rejected("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", Bytes{0}, "non-negative integer");
  expect_header_rejected("{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", Bytes{0}, "fraction");
  expect_header_rejected("{\"a\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616],\"data_offsets\":[0,1]}}", Bytes{0},
                         "overflows 64 bits");
  expect_header_rejected("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,],\"data_offsets\":[0,1]}}", Bytes{0}, "non-negative integer");
  expect_header_rejected("{\"__metadata__\":{\"k\":1}}", none, "is not a string");
  expect_header_rejected("{\"__metadata__\":{},\"__metadata__\":{}}", none, "appears twice");
  expect_header_rejected("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", none, "appears twice");
}

TEST(Safetensors, RejectsBadEntries) {
  const Bytes one = {7};
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1]}})", one, "needs dtype, shape and data_offsets");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}})", one, "unexpected or repeated key");
  expect_header_rejected(R"({"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", one, "unexpected or repeated key");
  expect_header_rejected(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", one, "unknown dtype");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", one, "exactly two integers");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}})", one, "are not within");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,2]}})", one, "are not within");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,1]}})", one, "needs more bytes");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,2]}})", Bytes{1, 2}, "need 1 bytes, data_offsets span 2");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,1]}})", one,
                         "shape needs more bytes");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                         one, "appears twice");
  const Bytes two = {1, 2};
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                         two, "tensors overlap");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", two, "hole in the data");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", two, "1 bytes after the last tensor");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", two, "after the last tensor");
}

TEST(Safetensors, EveryTruncationOfAValidFileIsRejected) {
  const std::string header = R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})";
  const Bytes file = make_file(header, Bytes{0x55, 0x66, 0x99, 0x00, 0x00, 0x00, 0x40});
  EXPECT_NO_THROW((void)bitlinear::SafetensorsView::parse(file.data(), file.size()));
  for (std::size_t n = 0; n < file.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_THROW((void)bitlinear::SafetensorsView::parse(file.data(), n), std::invalid_argument);
  }
}

// --- reader details -------------------------------------------------------------------------------------

TEST(Safetensors, ZeroElementTensorsWithAZeroDimensionAnywhere) {
  // Before the fix, shape [4, 0] was compared against its empty span one dimension at a time and rejected.
  const std::string header = R"({"a":{"dtype":"F32","shape":[4,0],"data_offsets":[0,0]},)"
                             R"("b":{"dtype":"U8","shape":[3,0,5],"data_offsets":[0,0]},)"
                             R"("c":{"dtype":"BF16","shape":[0,4],"data_offsets":[0,0]},)"
                             R"("d":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  const Bytes file = make_file(header, Bytes{9, 8});
  const auto view = bitlinear::SafetensorsView::parse(file.data(), file.size());
  EXPECT_EQ(view.at("a").size_bytes, 0u);
  EXPECT_EQ(view.at("a").element_count(), 0u);
  EXPECT_EQ(view.at("b").size_bytes, 0u);
  EXPECT_EQ(view.at("d").data[1], 8);
  EXPECT_TRUE(bitlinear::safetensors_to_float(view.at("a")).empty());
  // A zero dimension still needs an empty span.
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[4,0],"data_offsets":[0,1]}})", Bytes{1}, "need 0 bytes");
}

TEST(Safetensors, NamesMustBeValidUtf8) {
  const std::string tail = R"(":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"\x80", "cannot start a character"},         {"a\xC3", "missing continuation byte"},
      {"\xC0\xAF", "cannot start a character"},     {"\xE0\x80\xAF", "overlong"},
      {"\xF0\x80\x80\xAF", "overlong"},             {"\xED\xA0\x80", "encoded surrogate"},
      {"\xF4\x90\x80\x80", "above U+10FFFF"},       {"\xF5\x80\x80\x80", "cannot start a character"},
      {"\xFF", "cannot start a character"},         {"\xE2\x82", "missing continuation byte"}};
  for (const auto& [name, needle] : bad) expect_header_rejected("{\"" + name + tail, Bytes{1}, needle);
  expect_header_rejected("{\"\xE2\x82", Bytes{}, "truncated character");
  expect_header_rejected(R"({"__metadata__":{"k":")" "\xC3\x28" R"("}})", Bytes{}, "missing continuation byte");
  // Valid multi-byte names (2, 3 and 4 bytes, the largest code point) are kept byte for byte.
  const std::string good = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF";
  const Bytes file = make_file("{\"" + good + tail, Bytes{1});
  EXPECT_NE(bitlinear::SafetensorsView::parse(file.data(), file.size()).find(good), nullptr);
}

// A temporary file that removes itself.
struct TempFile {
  std::string path;
  explicit TempFile(const Bytes& bytes) {
    static int counter = 0;
    path = (std::filesystem::temp_directory_path() /
            ("bitlinear_st_" + std::to_string(std::random_device{}()) + "_" + std::to_string(counter++) + ".safetensors"))
               .string();
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  ~TempFile() { std::remove(path.c_str()); }
};

void expect_open_rejected(const std::string& path, bitlinear::FileAccess access, const std::string& needle) {
  SCOPED_TRACE(path + (access == bitlinear::FileAccess::map ? " (map)" : " (read)"));
  try {
    (void)bitlinear::SafetensorsFile::open(path, access);
    ADD_FAILURE() << "accepted a malformed file";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(SafetensorsFile, MappedAndReadPathsGiveTheSameTensors) {
  const std::string header = R"({"__metadata__":{"format":"pt"},"w":{"dtype":"U8","shape":[2,3],"data_offsets":[0,6]},)"
                             R"("s":{"dtype":"F32","shape":[1],"data_offsets":[6,10]}})";
  const TempFile f(make_file(header, Bytes{1, 2, 3, 4, 5, 6, 0x00, 0x00, 0x80, 0x3F}));
  const auto mapped = bitlinear::SafetensorsFile::open(f.path);
  const auto read = bitlinear::SafetensorsFile::open(f.path, bitlinear::FileAccess::read);
  std::ifstream in(f.path, std::ios::binary);
  const auto streamed = bitlinear::SafetensorsFile::read(in);  // size unknown: the growing-buffer path
#if BITLINEAR_HAVE_FILE_MAPPING
  EXPECT_TRUE(mapped.is_mapped());
#endif
  EXPECT_FALSE(read.is_mapped());
  for (const bitlinear::SafetensorsFile* file : {&mapped, &read, &streamed}) {
    const auto& w = file->view().at("w");
    EXPECT_EQ(w.shape, (std::vector<std::uint64_t>{2, 3}));
    EXPECT_EQ(std::vector<std::uint8_t>(w.data, w.data + 6), (Bytes{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(bitlinear::safetensors_to_float(file->view().at("s")), std::vector<float>{1.0f});
    EXPECT_EQ(file->view().metadata().at(0).second, "pt");
  }
  // Moving the file object keeps the views valid (mapping and vector buffers do not move).
  auto moved = bitlinear::SafetensorsFile::open(f.path);
  const std::uint8_t* before = moved.view().at("w").data;
  const bitlinear::SafetensorsFile target = std::move(moved);
  EXPECT_EQ(target.view().at("w").data, before);
  EXPECT_EQ(target.view().at("w").data[5], 6);
}

TEST(SafetensorsFile, HeaderIsCheckedBeforeTheDataIsRead) {
  // /dev/zero: a header length of 0, then an empty header. Before the fix the whole "file" was read first,
  // which ended in std::bad_alloc after about 528 MB instead of this message.
  if (std::ifstream("/dev/zero").good()) {
    for (auto access : {bitlinear::FileAccess::map, bitlinear::FileAccess::read}) {
      expect_open_rejected("/dev/zero", access, "the header must be a JSON object");
    }
  }
  // A header that claims 2^40 data bytes in a file of a few bytes: rejected from the header and the file size,
  // without allocating the claimed size.
  const std::string huge = R"({"w":{"dtype":"U8","shape":[1099511627776],"data_offsets":[0,1099511627776]}})";
  const TempFile f(make_file(huge, Bytes{1, 2, 3}));
  expect_open_rejected(f.path, bitlinear::FileAccess::map, "are not within the 3 data bytes");
  expect_open_rejected(f.path, bitlinear::FileAccess::read, "are not within the 3 data bytes");
  // The same from a stream of unknown size: the buffer grows with the bytes that arrive, then "truncated".
  const Bytes bytes = make_file(huge, Bytes{1, 2, 3});
  std::istringstream stream(std::string(bytes.begin(), bytes.end()));
  try {
    (void)bitlinear::SafetensorsFile::read(stream);
    ADD_FAILURE() << "accepted a truncated stream";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("truncated: the data needs 1099511627776 bytes, only 3 follow"),
              std::string::npos)
        << e.what();
  }
  // Trailing bytes after the last tensor, from a stream.
  const Bytes trailing = make_file(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", Bytes{1, 2});
  std::istringstream extra(std::string(trailing.begin(), trailing.end()));
  EXPECT_THROW((void)bitlinear::SafetensorsFile::read(extra), std::invalid_argument);
  // Header length beyond the file, and a header longer than the 100 MB limit, from the file itself.
  const TempFile short_header(make_file("{}", {}, 1000));
  expect_open_rejected(short_header.path, bitlinear::FileAccess::map, "only 2 bytes follow");
  expect_open_rejected(short_header.path, bitlinear::FileAccess::read, "only 2 bytes follow");
  std::istringstream long_header(std::string(8, '\xFF'));
  EXPECT_THROW((void)bitlinear::SafetensorsFile::read(long_header), std::invalid_argument);
}

TEST(SafetensorsFile, MissingFileIsARuntimeError) {
  EXPECT_THROW((void)bitlinear::SafetensorsFile::open("/nonexistent/bitlinear.safetensors"), std::runtime_error);
  EXPECT_THROW((void)bitlinear::SafetensorsFile::open("/nonexistent/bitlinear.safetensors", bitlinear::FileAccess::read),
               std::runtime_error);
}

TEST(Safetensors, LookupByNameAmongManyTensors) {
  std::string header = "{";
  const int n = 2000;
  for (int i = n - 1; i >= 0; --i) {  // reverse order: lookups must not depend on the file order
    header += "\"t" + std::to_string(i) + "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[" + std::to_string(i) +
              "," + std::to_string(i + 1) + "]}" + (i ? "," : "}");
  }
  Bytes data(n);
  for (int i = 0; i < n; ++i) data[i] = static_cast<std::uint8_t>(i);
  const Bytes file = make_file(header, data);
  const auto view = bitlinear::SafetensorsView::parse(file.data(), file.size());
  for (int i = 0; i < n; ++i) {
    const auto* t = view.find("t" + std::to_string(i));
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->data[0], static_cast<std::uint8_t>(i));
  }
  EXPECT_EQ(view.find("t"), nullptr);
  EXPECT_EQ(view.find("t20000"), nullptr);
}

// --- Hugging Face import on hand-built packed bytes ----------------------------------------------------------

TEST(HfPacked, OneHotBitOrder) {
  // 2 packed rows (out = 8) x 3 inputs. Row r = i*2 + j lives in bits 2i..2i+1 of packed row j.
  // Byte [j=1][k=2] = fields (i=0: 2, i=1: 0, i=2: 1, i=3: 1) = 0b01'01'00'10 -> rows 1, 3, 5, 7 at k = 2 get +1, -1, 0, 0.
  std::vector<std::uint8_t> packed(6, 0x55);  // all code 0
  packed[1 * 3 + 2] = 0x52;
  const auto layer = bitlinear::ternary_from_hf_packed(packed.data(), 2, 3, 4.0f, bitlinear::HfScaleConvention::divide);
  const std::vector<std::int8_t> codes = layer.unpacked_weights();
  std::vector<std::int8_t> expected(8 * 3, 0);
  expected[1 * 3 + 2] = 1;
  expected[3 * 3 + 2] = -1;
  EXPECT_EQ(codes, expected);
  EXPECT_EQ(layer.weight_scale(), 0.25f);  // divide: beta = 1 / weight_scale
  const auto multiplied = bitlinear::ternary_from_hf_packed(packed.data(), 2, 3, 4.0f, bitlinear::HfScaleConvention::multiply);
  EXPECT_EQ(multiplied.weight_scale(), 4.0f);
}

TEST(HfPacked, BiasIsScaledOnlyForMultiply) {
  std::vector<std::uint8_t> packed(2, 0x55);
  const float bias[4] = {1.0f, -2.0f, 3.0f, 0.5f};
  const auto d = bitlinear::ternary_from_hf_packed(packed.data(), 1, 2, 2.0f, bitlinear::HfScaleConvention::divide, bias);
  const auto m = bitlinear::ternary_from_hf_packed(packed.data(), 1, 2, 2.0f, bitlinear::HfScaleConvention::multiply, bias);
  const float x[2] = {0.3f, -0.7f};
  float yd[4], ym[4];
  d.forward(x, 1, yd);
  m.forward(x, 1, ym);
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(yd[j], bias[j]);  // all codes 0: only the bias remains
    EXPECT_EQ(ym[j], 2.0f * bias[j]);
  }
}

TEST(HfPacked, RejectsBadInput) {
  std::vector<std::uint8_t> packed(4, 0x55);
  packed[3] = 0xD5;  // bits 6..7 = 3
  try {
    (void)bitlinear::ternary_from_hf_packed(packed.data(), 2, 2, 1.0f, bitlinear::HfScaleConvention::divide);
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[1][1] holds field value 3 in bits 6..7"), std::string::npos) << e.what();
  }
  packed[3] = 0x55;
  for (float bad : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    std::numeric_limits<float>::denorm_min()}) {
    EXPECT_THROW((void)bitlinear::ternary_from_hf_packed(packed.data(), 2, 2, bad, bitlinear::HfScaleConvention::divide),
                 std::invalid_argument)
        << bad;
  }
  EXPECT_THROW((void)bitlinear::ternary_from_hf_packed(packed.data(), 0, 2, 1.0f, bitlinear::HfScaleConvention::divide),
               std::invalid_argument);
  EXPECT_THROW((void)bitlinear::ternary_from_hf_packed(packed.data(), 1, (std::size_t{1} << 20) + 1, 1.0f,
                                                       bitlinear::HfScaleConvention::divide),
               std::invalid_argument);
}

TEST(HfPacked, MatchesTheTransformersUnpackingForEveryTailLength) {
  // transformers' unpack_weights: code row i * R + j = ((packed[j] >> 2i) & 3) - 1. Random valid fields, in_features
  // around the 64- and 256-weight boundaries of the canonical blocks.
  std::uint64_t state = 12345;
  auto next = [&] { return (state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  for (std::size_t in : {1u, 2u, 63u, 64u, 65u, 255u, 256u, 257u, 300u, 511u, 512u, 513u, 1000u}) {
    for (std::size_t rows : {1u, 3u}) {
      SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(in));
      std::vector<std::uint8_t> packed(rows * in);
      for (auto& b : packed) {
        b = 0;
        for (int i = 0; i < 4; ++i) b = static_cast<std::uint8_t>(b | (next() % 3) << (2 * i));
      }
      const auto layer = bitlinear::ternary_from_hf_packed(packed.data(), rows, in, 2.0f, bitlinear::HfScaleConvention::divide);
      ASSERT_EQ(layer.out_features(), 4 * rows);
      const std::vector<std::int8_t> codes = layer.unpacked_weights();
      for (std::size_t r = 0; r < 4 * rows; ++r) {
        for (std::size_t k = 0; k < in; ++k) {
          const int expected = ((packed[(r % rows) * in + k] >> (2 * (r / rows))) & 3) - 1;
          ASSERT_EQ(codes[r * in + k], expected) << "row " << r << " k " << k;
        }
      }
      // A field 3 anywhere is reported with its packed coordinates, whichever block or tail it is in.
      const std::size_t j = rows - 1, k = in - 1;
      packed[j * in + k] = static_cast<std::uint8_t>(packed[j * in + k] | 0x30);  // bits 4..5 = 3
      try {
        (void)bitlinear::ternary_from_hf_packed(packed.data(), rows, in, 2.0f, bitlinear::HfScaleConvention::divide);
        ADD_FAILURE() << "accepted a field value 3";
      } catch (const std::invalid_argument& e) {
        const std::string needle = "[" + std::to_string(j) + "][" + std::to_string(k) + "] holds field value 3 in bits 4..5";
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      }
    }
  }
}

// Issue 12, item 2: a U8 weight [R, 1] imports to 4R rows of 64 bytes (256x its file size). The import budget
// turns a hostile file into a clear error instead of gigabytes of allocation (before the fix, this call
// allocated 2 x 1 GiB + 256 B).
TEST(HfPacked, WeightByteBudget) {
  const std::size_t rows = (std::size_t{1} << 22) + 1;  // 4 MiB of file -> 1 GiB + 256 B of layer
  const std::vector<std::uint8_t> packed(rows, 0x55);
  try {
    (void)bitlinear::ternary_from_hf_packed(packed.data(), rows, 1, 1.0f, bitlinear::HfScaleConvention::divide);
    ADD_FAILURE() << "imported a layer beyond the default budget";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("1073742080 bytes, more than the import budget max_weight_bytes = 1073741824"),
              std::string::npos)
        << e.what();
  }
  // The budget is the caller's: a small one rejects a small layer, and a layer of exactly the budget is accepted.
  bitlinear::HfImportOptions options;
  options.max_weight_bytes = 4 * 2 * 64 - 1;
  EXPECT_THROW((void)bitlinear::ternary_from_hf_packed(packed.data(), 2, 1, 1.0f, bitlinear::HfScaleConvention::divide,
                                                       nullptr, options),
               std::invalid_argument);
  options.max_weight_bytes = 4 * 2 * 64;
  EXPECT_EQ(bitlinear::ternary_from_hf_packed(packed.data(), 2, 1, 1.0f, bitlinear::HfScaleConvention::divide, nullptr,
                                              options)
                .packed_weights_size(),
            512u);
  // HfImportOptions converts from Options, so calls that passed layer options keep compiling.
  bitlinear::Options layer_options;
  layer_options.activation_scale = bitlinear::ActivationScale::per_tensor;
  const auto layer =
      bitlinear::ternary_from_hf_packed(packed.data(), 2, 1, 1.0f, bitlinear::HfScaleConvention::divide, nullptr, layer_options);
  EXPECT_EQ(layer.options().activation_scale, bitlinear::ActivationScale::per_tensor);
  // The same budget applies through the safetensors entry point.
  const Bytes data = {0x55, 0x66, 0x99, 0x00, 0x00, 0x80, 0x3F};
  const Bytes file = make_file(
      R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})",
      data);
  const auto view = bitlinear::SafetensorsView::parse(file.data(), file.size());
  options.max_weight_bytes = 255;
  EXPECT_THROW((void)bitlinear::ternary_from_hf_checkpoint(view, "w", bitlinear::HfScaleConvention::divide, options),
               std::invalid_argument);
  options.max_weight_bytes = 256;
  EXPECT_EQ(bitlinear::ternary_from_hf_checkpoint(view, "w", bitlinear::HfScaleConvention::divide, options).out_features(), 4u);
}

TEST(HfPacked, CheckpointTensorsAreValidated) {
  auto parse_and_import = [](const std::string& header, const Bytes& data) {
    const Bytes file = make_file(header, data);
    const auto view = bitlinear::SafetensorsView::parse(file.data(), file.size());
    return bitlinear::ternary_from_hf_checkpoint(view, "w", bitlinear::HfScaleConvention::divide);
  };
  const Bytes data = {0x55, 0x66, 0x99, 0x00, 0x00, 0x00, 0x40};
  const auto layer = parse_and_import(
      R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})",
      data);
  EXPECT_EQ(layer.out_features(), 4u);
  EXPECT_EQ(layer.weight_scale(), 0.5f);
  EXPECT_THROW(parse_and_import(R"({"w.weight":{"dtype":"I8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})", data),
               std::invalid_argument);
  EXPECT_THROW(parse_and_import(R"({"w.weight":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})", data),
               std::invalid_argument);
  EXPECT_THROW(parse_and_import(R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"U32","shape":[1],"data_offsets":[3,7]}})", data),
               std::invalid_argument);
  EXPECT_THROW(parse_and_import(R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"U16","shape":[2],"data_offsets":[3,7]}})", data),
               std::invalid_argument);
  EXPECT_THROW(parse_and_import(R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"x":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})", data),
               std::invalid_argument);
  EXPECT_THROW(parse_and_import(R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"F16","shape":[1],"data_offsets":[3,5]},"w.bias":{"dtype":"F16","shape":[1],"data_offsets":[5,7]}})", data),
               std::invalid_argument);  // bias must have out_features = 4 values
}

}  // namespace
