#pragma once
#include <cstddef>
#include <vector>

// y = forward of a layer built from w and bias by the scalar family, compiled with plain flags.
std::vector<float> no_gnu_reference_forward(bool ternary, const std::vector<float>& w, const std::vector<float>& bias,
                                            const std::vector<float>& x, std::size_t out, std::size_t in,
                                            std::size_t batch);
