// Loads the checkpoints written by tests/interop/hf_reference.py (PyTorch) and checks the imported layers against
// PyTorch: the int8 activations bit for bit, the outputs to 1e-6 of the magnitude of their terms, on every
// kernel family this CPU runs. Usage: bitlinear_hf_tests FIXTURE_DIR (ctest passes it).
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/io/hf_import.hpp>
#include <bitlinear/io/safetensors.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../test_util.hpp"

namespace {

std::string g_fixture_dir;

const bitlinear::SafetensorsFile& fixture() {
  static const bitlinear::SafetensorsFile file =
      bitlinear::SafetensorsFile::open(g_fixture_dir + "/hf_cases.safetensors");
  return file;
}

std::string metadata(const std::string& key) {
  for (const auto& kv : fixture().view().metadata()) {
    if (kv.first == key) return kv.second;
  }
  ADD_FAILURE() << "metadata key " << key << " missing";
  return "";
}

TEST(HfImport, FixtureHasCases) {
  EXPECT_GE(std::stoi(metadata("cases")), 5);
}

TEST(HfImport, MatchesPyTorch) {
  const bitlinear::SafetensorsView& file = fixture().view();
  const int cases = std::stoi(metadata("cases"));
  for (int n = 0; n < cases; ++n) {
    const std::string prefix = "case" + std::to_string(n);
    SCOPED_TRACE(prefix);
    const std::string convention_name = metadata(prefix);
    ASSERT_TRUE(convention_name == "divide" || convention_name == "multiply") << convention_name;
    const auto convention = convention_name == "divide" ? bitlinear::HfScaleConvention::divide
                                                         : bitlinear::HfScaleConvention::multiply;
    const bitlinear::SafetensorsTensor& packed = file.at(prefix + ".weight");
    const bitlinear::SafetensorsTensor& x_t = file.at(prefix + ".x");
    const std::vector<float> x = bitlinear::safetensors_to_float(x_t);
    const std::vector<float> y_ref = bitlinear::safetensors_to_float(file.at(prefix + ".y"));
    const std::vector<float> magnitude = bitlinear::safetensors_to_float(file.at(prefix + ".magnitude"));
    const bitlinear::SafetensorsTensor& q_t = file.at(prefix + ".q");
    const std::size_t rows = packed.shape[0], in = packed.shape[1], out = 4 * rows, batch = x_t.shape[0];
    ASSERT_EQ(q_t.dtype, "I8");

    for (bitlinear::Isa isa : bitlinear_test::runnable_isas()) {
      SCOPED_TRACE(bitlinear_test::isa_label(isa));
      bitlinear::Options options;
      options.isa = isa;
      const bitlinear::TernaryLinear layer = bitlinear::ternary_from_hf_checkpoint(file, prefix, convention, options);
      ASSERT_EQ(layer.out_features(), out);
      ASSERT_EQ(layer.in_features(), in);

      // Codes: row i*rows + j is field i of packed row j, minus 1 (the rule, written out independently here).
      const std::vector<std::int8_t> codes = layer.unpacked_weights();
      for (std::size_t r = 0; r < out; ++r) {
        for (std::size_t k = 0; k < in; ++k) {
          const int field = (packed.data[(r % rows) * in + k] >> (2 * (r / rows))) & 3;
          ASSERT_EQ(codes[r * in + k], field - 1) << "row " << r << " col " << k;
        }
      }

      // Quantized activations: bit for bit.
      bitlinear::QuantizedActivations acts;
      layer.quantize(x.data(), batch, in, acts);
      const bitlinear::ActivationsView view = acts.view();
      for (std::size_t t = 0; t < batch; ++t) {
        for (std::size_t k = 0; k < in; ++k) {
          ASSERT_EQ(view.q[t * view.stride + k], static_cast<std::int8_t>(q_t.data[t * in + k]))
              << "token " << t << " k " << k;
        }
      }

      // Outputs: PyTorch's order of float operations differs from the pinned one in the last roundings.
      std::vector<float> y(batch * out);
      layer.forward(x.data(), batch, y.data());
      double worst = 0.0;
      for (std::size_t i = 0; i < y.size(); ++i) {
        const double err = std::fabs(static_cast<double>(y[i]) - y_ref[i]);
        const double allowed = 1e-6 * magnitude[i];
        if (magnitude[i] == 0.0f) {
          EXPECT_EQ(y[i], y_ref[i]) << i;
        } else {
          EXPECT_LE(err, allowed) << "output " << i << ": " << y[i] << " vs PyTorch " << y_ref[i];
          worst = std::max(worst, err / magnitude[i]);
        }
      }
      RecordProperty(prefix + "_" + bitlinear_test::isa_label(isa) + "_worst_relative", std::to_string(worst));
      std::printf("%s %s (%s): worst |y - y_torch| / magnitude = %.3g\n", prefix.c_str(),
                  bitlinear_test::isa_label(isa).c_str(), convention_name.c_str(), worst);
    }
  }
}

TEST(HfImport, OppositeConventionIsFarOff) {
  // Guards the test itself: picking the wrong convention must fail the 1e-6 comparison by a wide margin.
  const bitlinear::SafetensorsView& file = fixture().view();
  const bitlinear::TernaryLinear wrong =
      bitlinear::ternary_from_hf_checkpoint(file, "case0", bitlinear::HfScaleConvention::multiply);
  const bitlinear::SafetensorsTensor& x_t = file.at("case0.x");
  const std::vector<float> x = bitlinear::safetensors_to_float(x_t);
  const std::vector<float> y_ref = bitlinear::safetensors_to_float(file.at("case0.y"));
  std::vector<float> y(y_ref.size());
  wrong.forward(x.data(), x_t.shape[0], y.data());
  double far = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) far = std::max(far, std::fabs(static_cast<double>(y[i]) - y_ref[i]));
  EXPECT_GT(far, 1e-2);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FIXTURE_DIR (written by tests/interop/hf_reference.py)\n", argv[0]);
    return 2;
  }
  g_fixture_dir = argv[1];
  return RUN_ALL_TESTS();
}
