// Strided inputs and outputs: a layer reading a column slice of a wider activation matrix (e.g. the q, k or v
// third of a fused QKV output) and writing into a column slice of a wider output, compared bit for bit with the
// contiguous call; columns outside the slice must stay untouched.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "test_util.hpp"

namespace {

constexpr float kCanary = 777.25f;

enum class Path { plain, workspace, pooled };

template <class Layer>
void expect_slice_matches_contiguous(std::size_t out, std::size_t in, std::size_t batch, Path path,
                                     std::uint32_t seed) {
  const auto w = bitlinear_test::random_floats(out * in, seed);
  const auto bias = bitlinear_test::random_floats(out, seed + 1);
  const auto layer = Layer::from_float(w.data(), out, in, bias.data());

  // Fused QKV-like input: each row holds [q | k | v | 1 spare], the layer reads k (columns in .. 2 in).
  const std::size_t x_stride = 3 * in + 1;
  const auto fused = bitlinear_test::random_floats(batch * x_stride, seed + 2, -3.0f, 3.0f);
  std::vector<float> x_contiguous(batch * in);
  for (std::size_t t = 0; t < batch; ++t) {
    for (std::size_t k = 0; k < in; ++k) x_contiguous[t * in + k] = fused[t * x_stride + in + k];
  }
  std::vector<float> expected(batch * out);
  layer.forward(x_contiguous.data(), batch, expected.data());

  // Output slice: columns [5, 5 + out) of rows out + 9 wide; the input pointer is misaligned by the offset `in`.
  const std::size_t y_stride = out + 9, y_offset = 5;
  std::vector<float> y(batch * y_stride, kCanary);
  const float* x = fused.data() + in;
  float* y_slice = y.data() + y_offset;
  bitlinear::ThreadPool pool(3);
  std::vector<unsigned char> workspace(layer.workspace_size(batch) + 1);
  switch (path) {
    case Path::plain: layer.forward(x, batch, x_stride, y_slice, y_stride); break;
    case Path::workspace:
      layer.forward(x, batch, x_stride, y_slice, y_stride, workspace.data() + 1, workspace.size() - 1);
      break;
    case Path::pooled: layer.forward(x, batch, x_stride, y_slice, y_stride, pool); break;
  }
  for (std::size_t t = 0; t < batch; ++t) {
    for (std::size_t c = 0; c < y_stride; ++c) {
      const float got = y[t * y_stride + c];
      if (c >= y_offset && c < y_offset + out) {
        ASSERT_TRUE(bitlinear_test::same_bits(got, expected[t * out + c - y_offset]))
            << "out=" << out << " in=" << in << " batch=" << batch << " path=" << static_cast<int>(path) << " row "
            << t << " output " << c - y_offset;
      } else {
        ASSERT_TRUE(bitlinear_test::same_bits(got, kCanary)) << "wrote outside the output slice: row " << t << " col " << c;
      }
    }
  }
}

const std::size_t kSizes[][3] = {{1, 1, 1}, {17, 33, 3}, {64, 129, 5}, {300, 257, 9}, {130, 1000, 2}};

TEST(Strided, TernarySliceMatchesContiguous) {
  std::uint32_t seed = 1;
  for (const auto& s : kSizes) {
    for (Path p : {Path::plain, Path::workspace, Path::pooled}) {
      expect_slice_matches_contiguous<bitlinear::TernaryLinear>(s[0], s[1], s[2], p, seed += 5);
    }
  }
}

TEST(Strided, BinarySliceMatchesContiguous) {
  std::uint32_t seed = 1000;
  for (const auto& s : kSizes) {
    for (Path p : {Path::plain, Path::workspace, Path::pooled}) {
      expect_slice_matches_contiguous<bitlinear::BinaryLinear>(s[0], s[1], s[2], p, seed += 5);
    }
  }
}

TEST(Strided, OneQuantizationFeedsThreeSlicesOfAFusedOutput) {
  // q, k, v projections share one quantized input and write their thirds of one fused output row.
  const std::size_t in = 96, heads_out = 40, batch = 4;
  const auto x = bitlinear_test::random_floats(batch * in, 9);
  std::vector<bitlinear::TernaryLinear> layers;
  for (std::uint32_t i = 0; i < 3; ++i) {
    const auto w = bitlinear_test::random_floats(heads_out * in, 20 + i);
    layers.push_back(bitlinear::TernaryLinear::from_float(w.data(), heads_out, in));
  }
  bitlinear::QuantizedActivations acts;
  layers[0].quantize(x.data(), batch, in, acts);
  std::vector<float> fused(batch * 3 * heads_out, kCanary);
  for (std::size_t i = 0; i < 3; ++i) {
    layers[i].forward_quantized(acts.view(), 0, heads_out, fused.data() + i * heads_out, 3 * heads_out);
  }
  for (std::size_t i = 0; i < 3; ++i) {
    std::vector<float> alone(batch * heads_out);
    layers[i].forward(x.data(), batch, alone.data());
    for (std::size_t t = 0; t < batch; ++t) {
      for (std::size_t j = 0; j < heads_out; ++j) {
        ASSERT_TRUE(bitlinear_test::same_bits(fused[t * 3 * heads_out + i * heads_out + j], alone[t * heads_out + j]));
      }
    }
  }
}

TEST(Strided, StridesSmallerThanARowAreRejected) {
  const auto w = bitlinear_test::random_floats(8 * 16, 3);
  const auto layer = bitlinear::TernaryLinear::from_float(w.data(), 8, 16);
  std::vector<float> x(2 * 16), y(2 * 8);
  std::vector<unsigned char> workspace(layer.workspace_size(2));
  EXPECT_THROW(layer.forward(x.data(), 2, 15, y.data(), 8), std::invalid_argument);
  EXPECT_THROW(layer.forward(x.data(), 2, 16, y.data(), 7), std::invalid_argument);
  EXPECT_THROW(layer.forward(x.data(), 2, 15, y.data(), 8, workspace.data(), workspace.size()), std::invalid_argument);
  EXPECT_THROW(layer.forward(x.data(), 2, 16, y.data(), 7, workspace.data(), workspace.size()), std::invalid_argument);
  try {
    layer.forward(x.data(), 2, 15, y.data(), 8);
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("x_stride 15"), std::string::npos) << e.what();
  }
}

}  // namespace
