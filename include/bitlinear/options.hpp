// bitlinear: layer options.
#pragma once

#include "config.hpp"
#include "isa.hpp"

BITLINEAR_NAMESPACE_BEGIN

// How activations are scaled to int8: one absmax per row of x (per token, the BitNet default), one absmax
// over the whole batch (per tensor: every row shares one scale, so one non-finite input makes the whole
// batch NaN), one scale per block of 32 consecutive values of a row with ggml's Q8_0 rounding (per block), or
// one float scale per super-block of 256 consecutive values with ggml's Q8_K rounding (per super-block, what
// llama.cpp uses for TQ1_0 / TQ2_0 models). The last two: group-scaled layers only (grouped_layer.hpp);
// quantize.hpp has the rules of each mode.
enum class ActivationScale : std::uint8_t { per_token, per_tensor, per_block, per_superblock };

struct Options {
  ActivationScale activation_scale = ActivationScale::per_token;
  // Kernel family for this layer; automatic means the process default (see isa.hpp). Forcing a family the CPU
  // cannot run makes construction throw std::runtime_error.
  Isa isa = Isa::automatic;
};

BITLINEAR_NAMESPACE_END
