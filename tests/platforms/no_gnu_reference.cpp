// The reference for no_gnu_paths_test: the scalar family built the ordinary way (GNU paths, no -m flags, its own
// ABI namespace), so that it shares no code with the translation unit under test.
#include <bitlinear/bitlinear.hpp>

#include <vector>

#include "no_gnu_reference.hpp"

std::vector<float> no_gnu_reference_forward(bool ternary, const std::vector<float>& w, const std::vector<float>& bias,
                                            const std::vector<float>& x, std::size_t out, std::size_t in,
                                            std::size_t batch) {
  bitlinear::Options options;
  options.isa = bitlinear::Isa::scalar;
  std::vector<float> y(batch * out);
  if (ternary) {
    bitlinear::TernaryLinear::from_float(w.data(), out, in, bias.data(), options).forward(x.data(), batch, y.data());
  } else {
    bitlinear::BinaryLinear::from_float(w.data(), out, in, bias.data(), options).forward(x.data(), batch, y.data());
  }
  return y;
}
