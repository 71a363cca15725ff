// bitlinear: header-only BitLinear layers (BitNet b1.58 ternary and BitNet binary weights, int8 activations)
// on multiply-free SIMD kernels chosen at run time. The only header users need.
#pragma once

#include "config.hpp"
#include "options.hpp"
#include "isa.hpp"
#include "format.hpp"
#include "format_compact.hpp"
#include "fp16.hpp"
#include "activations.hpp"
#include "quantize.hpp"
#include "frontend.hpp"
#include "layer.hpp"
#include "grouped_layer.hpp"
#if BITLINEAR_HAS_THREADS  // config.hpp: the pool needs std::thread
#include "thread_pool.hpp"
#include "parallel_forward.hpp"
#include "grouped_parallel_forward.hpp"
#endif
#include "compact.hpp"
#include "grouped_compact.hpp"
