// bitlinear: the activation front-end. Float rows become quantized activations (ActivationsView, the input of
// forward_quantized) in one pass per row:
//   1. optional RMSNorm:          y = (x * r) * weight,  r = 1 / sqrt(sum x^2 / n + eps) in float32, PyTorch's
//                                 float order bit for bit (its AVX2 kernels' sum of squares)
//   2. optional signed rotation:  y <- H_B(s (.) y), the normalized Walsh-Hadamard transform over blocks of B values
//   3. activation quantization by any ActivationScale mode, with the library's own quantizers (quantize.hpp).
// The exact order of every float operation is in detail/frontend_row.hpp and docs/frontend.md. Steps 1 and 2 run
// that portable code, or on the x86 families kernels/avx2/frontend.hpp (and kernels/avx512/frontend.hpp for the
// norm, sign flip and rotation on the avx512 families), which do the same operations on the same operands in the
// same order; step 3 is bit-identical across families. So every family gives the same
// activations bit for bit. One result feeds every layer with the same in_features (q/k/v, gate/up).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "config.hpp"
#include "activations.hpp"
#include "error.hpp"
#include "isa.hpp"
#include "options.hpp"
#include "quantize.hpp"
#include "detail/checked_size.hpp"
#include "detail/exact_float.hpp"
#include "detail/fp_environment.hpp"
#include "detail/frontend_row.hpp"
#include "kernels/grid.hpp"
#include "kernels/avx2/frontend.hpp"
#include "kernels/avx512/frontend.hpp"
#if BITLINEAR_HAS_THREADS
#include "thread_pool.hpp"
#endif

BITLINEAR_NAMESPACE_BEGIN

// The smallest and largest Hadamard block sizes the front-end accepts (powers of two).
inline constexpr std::size_t min_hadamard_block = 64;
inline constexpr std::size_t max_hadamard_block = 2048;

struct FrontendOptions {
  // RMSNorm: on when rms_norm is true; norm_weight holds norm_weight_size == in_features finite values.
  bool rms_norm = false;
  const float* norm_weight = nullptr;
  std::size_t norm_weight_size = 0;
  float norm_eps = 1e-6f;
  // Signed blockwise Walsh-Hadamard rotation: on when hadamard_block != 0 (a power of two in [64, 2048] dividing
  // in_features); hadamard_signs holds hadamard_signs_size == in_features values, each +1.0f or -1.0f.
  std::size_t hadamard_block = 0;
  const float* hadamard_signs = nullptr;
  std::size_t hadamard_signs_size = 0;
  // How the result is quantized (any mode; per-tensor layers take per_token and per_tensor only).
  ActivationScale activation_scale = ActivationScale::per_token;
};

class ActivationFrontend {
 public:
  // Checks and copies the options (the norm weight and signs are copied: the caller's arrays may go away).
  // Throws std::invalid_argument naming the bad value and the rule it breaks.
  ActivationFrontend(std::size_t in_features, const FrontendOptions& options)
      : in_(in_features), options_(options) {
    BITLINEAR_REQUIRE(in_features > 0, "front-end in_features is 0; it must be at least 1");
    BITLINEAR_REQUIRE(in_features <= max_in_features, "front-end in_features " + std::to_string(in_features) +
                                                          " exceeds the limit of 2^20 = 1048576");
    const ActivationScale mode = options.activation_scale;
    BITLINEAR_REQUIRE(mode == ActivationScale::per_token || mode == ActivationScale::per_tensor ||
                          mode == ActivationScale::per_block || mode == ActivationScale::per_superblock,
                      "front-end activation scale mode holds an unknown value");
    if (options.rms_norm) {
      BITLINEAR_REQUIRE(options.norm_weight != nullptr, "RMSNorm weight is null; it must point to in_features = " +
                                                            std::to_string(in_features) + " floats");
      BITLINEAR_REQUIRE(options.norm_weight_size == in_features,
                        "RMSNorm weight has " + std::to_string(options.norm_weight_size) +
                            " values; it must have in_features = " + std::to_string(in_features));
      BITLINEAR_REQUIRE(detail::is_finite_bits(options.norm_eps) && !detail::is_negative_bits(options.norm_eps),
                        "RMSNorm eps " + detail::float_text(options.norm_eps) +
                            " is not allowed; it must be finite and not negative");
      for (std::size_t k = 0; k < in_features; ++k) {
        BITLINEAR_REQUIRE(detail::is_finite_bits(options.norm_weight[k]),
                          "RMSNorm weight[" + std::to_string(k) + "] = " +
                              detail::float_text(options.norm_weight[k]) + " is not finite; it must be finite");
      }
      norm_weight_.assign(options.norm_weight, options.norm_weight + in_features);
    }
    const std::size_t block = options.hadamard_block;
    if (block != 0) {
      BITLINEAR_REQUIRE((block & (block - 1)) == 0, "Hadamard block size " + std::to_string(block) +
                                                        " is not a power of two; it must be 64, 128, ..., 2048");
      BITLINEAR_REQUIRE(block >= min_hadamard_block && block <= max_hadamard_block,
                        "Hadamard block size " + std::to_string(block) +
                            " is out of range; it must be a power of two in [64, 2048]");
      BITLINEAR_REQUIRE(in_features % block == 0, "Hadamard block size " + std::to_string(block) +
                                                      " does not divide in_features = " + std::to_string(in_features));
      BITLINEAR_REQUIRE(options.hadamard_signs != nullptr, "Hadamard sign vector is null; it must point to "
                                                           "in_features = " + std::to_string(in_features) + " floats");
      BITLINEAR_REQUIRE(options.hadamard_signs_size == in_features,
                        "Hadamard sign vector has " + std::to_string(options.hadamard_signs_size) +
                            " values; it must have in_features = " + std::to_string(in_features));
      sign_mask_.resize(in_features);
      for (std::size_t k = 0; k < in_features; ++k) {
        const std::uint32_t bits = detail::float_bits(options.hadamard_signs[k]);
        BITLINEAR_REQUIRE(bits == detail::float_bits(1.0f) || bits == detail::float_bits(-1.0f),
                          "Hadamard sign[" + std::to_string(k) + "] = " +
                              detail::float_text(options.hadamard_signs[k]) + " is not allowed; signs must be +1 or -1");
        sign_mask_[k] = bits & 0x80000000u;
      }
      // 1 / sqrt(block) rounded once to float: exact (a power of two) when log2(block) is even.
      int log2 = 0;
      while ((std::size_t{1} << log2) < block) ++log2;
      const double root = static_cast<double>(std::size_t{1} << (log2 / 2));  // sqrt(2^(2m)) = 2^m
      hadamard_scale_ = log2 % 2 == 0 ? static_cast<float>(1.0 / root)
                                      : static_cast<float>(0.70710678118654752440 / root);
    }
    // Dangling pointers are not kept: the copies above hold the data.
    options_.norm_weight = nullptr;
    options_.hadamard_signs = nullptr;
  }

  std::size_t in_features() const noexcept { return in_; }
  ActivationScale activation_scale() const noexcept { return options_.activation_scale; }
  bool rms_norm() const noexcept { return options_.rms_norm; }
  std::size_t hadamard_block() const noexcept { return options_.hadamard_block; }

  // Bytes of caller memory quantize() needs for `batch` rows (any alignment): the activations of
  // activation_workspace_size(batch, in_features, mode) plus one float row per input row for the transformed values.
  std::size_t workspace_size(std::size_t batch) const {
    auto what = [&] { return "the front-end workspace for batch " + std::to_string(batch) + " x in_features " +
                             std::to_string(in_); };
    const std::size_t acts = activation_workspace_size(batch, in_, options_.activation_scale);
    const std::size_t rows = detail::checked_mul(detail::checked_mul(batch, scratch_stride(), what), sizeof(float), what);
    return detail::checked_add(detail::checked_add(acts, rows, what), 64, what);
  }

  // Runs the front-end on `batch` rows of x (row r at x + r * x_stride) into caller memory (workspace_size(batch)
  // bytes) with the kernels of family `isa`, and returns the activations (they live in the workspace). No
  // allocation. A row holding a NaN or an infinity (or one that overflows to infinity in the rotation) gets
  // scale NaN and q = 0, like quantize_activations(); per_tensor: every row. Throws std::invalid_argument on bad
  // arguments (nothing written), std::runtime_error if `isa` cannot run.
  MutableActivationsView quantize(const float* x, std::size_t batch, std::size_t x_stride, void* workspace,
                                  std::size_t workspace_bytes, Isa isa = Isa::automatic) const {
    Prepared p = prepare(x, batch, x_stride, workspace, workspace_bytes, isa);
    if (options_.activation_scale == ActivationScale::per_tensor) {
      {
        const detail::FpEnvironmentGuard fp_environment;
        transform_and_absmax(*p.kernels, x, x_stride, p, 0, batch);
      }
      const float s_x = tensor_scale(p);
      const detail::FpEnvironmentGuard fp_environment;
      quantize_scaled(*p.kernels, p, s_x, 0, batch);
    } else {
      const detail::FpEnvironmentGuard fp_environment;
      run_rows(*p.kernels, x, x_stride, p, 0, batch);
    }
    return p.out;
  }

#if BITLINEAR_HAS_THREADS
  // quantize() with its rows spread over `pool`: the same result bit for bit.
  MutableActivationsView quantize(const float* x, std::size_t batch, std::size_t x_stride, void* workspace,
                                  std::size_t workspace_bytes, ThreadPool& pool, Isa isa = Isa::automatic) const {
    Prepared p = prepare(x, batch, x_stride, workspace, workspace_bytes, isa);
    const detail::KernelTable& kernels = *p.kernels;
    constexpr std::size_t chunk_floats = 1u << 14;  // floats of x per task, as quantize_activations_parallel
    const std::size_t chunk = chunk_floats / in_ > 0 ? chunk_floats / in_ : 1;
    if (options_.activation_scale == ActivationScale::per_tensor) {
      pool.parallel_for(0, batch, chunk, [&](std::size_t begin, std::size_t end) {
        const detail::FpEnvironmentGuard fp_environment;
        transform_and_absmax(kernels, x, x_stride, p, begin, end);
      });
      const float s_x = tensor_scale(p);
      pool.parallel_for(0, batch, chunk, [&](std::size_t begin, std::size_t end) {
        const detail::FpEnvironmentGuard fp_environment;
        quantize_scaled(kernels, p, s_x, begin, end);
      });
    } else {
      pool.parallel_for(0, batch, chunk, [&](std::size_t begin, std::size_t end) {
        const detail::FpEnvironmentGuard fp_environment;
        run_rows(kernels, x, x_stride, p, begin, end);
      });
    }
    return p.out;
  }
#endif

  // Steps 1 and 2 alone: the float rows the quantizer sees (y row r at y + r * y_stride; y may equal x when the
  // strides are equal). For checks and for float paths of an engine.
  void transform(const float* x, std::size_t batch, std::size_t x_stride, float* y, std::size_t y_stride,
                 Isa isa = Isa::automatic) const {
    detail::check_activation_input(x, batch, in_, x_stride);
    BITLINEAR_REQUIRE(y != nullptr, "front-end output y is null");
    BITLINEAR_REQUIRE(y_stride >= in_, "y_stride " + std::to_string(y_stride) + " is less than in_features " +
                                           std::to_string(in_));
    const FloatPath path = float_path(resolve_isa(isa));
    const detail::FpEnvironmentGuard fp_environment;
    for (std::size_t r = 0; r < batch; ++r) transform_row(x + r * x_stride, y + r * y_stride, path);
  }

 private:
  // Which code runs the float steps (every one gives the same bits): detail/frontend_row.hpp, kernels/avx2/frontend.hpp,
  // or the avx512 families' norm, sign flip and rotation in kernels/avx512/frontend.hpp (the sum of squares in AVX2).
  enum class FloatPath { portable, avx2, avx512 };

  struct Prepared {
    const detail::KernelTable* kernels = nullptr;
    FloatPath path = FloatPath::portable;
    MutableActivationsView out;
    float* scratch = nullptr;  // batch rows of scratch_stride() floats
  };

  std::size_t scratch_stride() const noexcept { return (in_ + 15) / 16 * 16; }  // whole 64-byte lines per row

  Prepared prepare(const float* x, std::size_t batch, std::size_t x_stride, void* workspace,
                   std::size_t workspace_bytes, Isa isa) const {
    detail::check_activation_input(x, batch, in_, x_stride);
    BITLINEAR_REQUIRE(workspace != nullptr, "front-end workspace is null");
    const std::size_t need = workspace_size(batch);
    BITLINEAR_REQUIRE(workspace_bytes >= need, "front-end workspace of " + std::to_string(workspace_bytes) +
                                                   " bytes is too small; batch " + std::to_string(batch) +
                                                   " of in_features " + std::to_string(in_) + " needs " +
                                                   std::to_string(need));
    Prepared p;
    const Isa resolved = resolve_isa(isa);
    p.kernels = &detail::kernel_table(resolved);
    p.path = float_path(resolved);
    const std::size_t acts = activation_workspace_size(batch, in_, options_.activation_scale);
    p.out = activation_view_in(workspace, acts, batch, in_, options_.activation_scale);
    const auto tail = reinterpret_cast<std::uintptr_t>(static_cast<unsigned char*>(workspace) + acts);
    p.scratch = reinterpret_cast<float*>(static_cast<unsigned char*>(workspace) + acts + (64 - tail % 64) % 64);
    return p;
  }

  static FloatPath float_path(Isa isa) noexcept {
    if (!BITLINEAR_ARCH_X86_64) return FloatPath::portable;
    if (isa == Isa::avx512 || isa == Isa::avx512_vbmi) return FloatPath::avx512;
    if (isa == Isa::avx2 || isa == Isa::avxvnni) return FloatPath::avx2;
    return FloatPath::portable;
  }

  // Steps 1 and 2 for one row, inside an FpEnvironmentGuard.
  void transform_row(const float* x, float* y, FloatPath path) const noexcept {
    const std::uint32_t* signs = options_.hadamard_block != 0 ? sign_mask_.data() : nullptr;
#if BITLINEAR_ARCH_X86_64
    if (path != FloatPath::portable) {
      const float r = options_.rms_norm ? detail::avx2::rms_norm_factor(x, in_, options_.norm_eps) : 1.0f;
      if (path == FloatPath::avx512) {
        detail::avx512::transform_row(x, in_, options_.rms_norm, r, norm_weight_.data(), signs,
                                      options_.hadamard_block, hadamard_scale_, y);
      } else {
        detail::avx2::transform_row(x, in_, options_.rms_norm, r, norm_weight_.data(), signs,
                                    options_.hadamard_block, hadamard_scale_, y);
      }
      return;
    }
#else
    (void)path;
#endif
    if (options_.rms_norm) {
      const float r = detail::rms_norm_factor(x, in_, options_.norm_eps);
      detail::rms_norm_apply(x, in_, r, norm_weight_.data(), signs, y);
    } else if (signs != nullptr) {
      detail::flip_signs(x, in_, signs, y);
    } else if (y != x) {
      for (std::size_t k = 0; k < in_; ++k) y[k] = x[k];
    }
    if (options_.hadamard_block != 0) detail::hadamard_blocks(y, in_, options_.hadamard_block, hadamard_scale_);
  }

  // per_token, per_block, per_superblock: rows [begin, end) all the way.
  void run_rows(const detail::KernelTable& kernels, const float* x, std::size_t x_stride, const Prepared& p,
                std::size_t begin, std::size_t end) const noexcept {
    const ActivationScale mode = options_.activation_scale;
    for (std::size_t r = begin; r < end; ++r) {
      float* row = p.scratch + r * scratch_stride();
      transform_row(x + r * x_stride, row, p.path);
      if (mode == ActivationScale::per_token) {
        detail::quantize_activation_row(kernels, row, detail::activation_scale_from_absmax(kernels.absmax(row, in_)),
                                        p.out, r);
      } else {
        detail::quantize_blocked_row(kernels, row, mode, p.out, r);
      }
    }
  }

  // per_tensor, first half: rows [begin, end) transformed, their absmax in out.scale (overwritten later).
  void transform_and_absmax(const detail::KernelTable& kernels, const float* x, std::size_t x_stride,
                            const Prepared& p, std::size_t begin, std::size_t end) const noexcept {
    for (std::size_t r = begin; r < end; ++r) {
      float* row = p.scratch + r * scratch_stride();
      transform_row(x + r * x_stride, row, p.path);
      p.out.scale[r] = kernels.absmax(row, in_);
    }
  }

  // per_tensor: the shared scale from the row maxima (NaN if any row is not finite).
  static float tensor_scale(const Prepared& p) noexcept {
    float m = 0.0f;
    for (std::size_t r = 0; r < p.out.batch && detail::is_finite_bits(m); ++r) {
      m = detail::fold_tensor_absmax(m, p.out.scale[r]);
    }
    const detail::FpEnvironmentGuard fp_environment;
    return detail::opaque(detail::activation_scale_from_absmax(m));
  }

  // per_tensor, second half: rows [begin, end) quantized with the shared scale.
  void quantize_scaled(const detail::KernelTable& kernels, const Prepared& p, float s_x, std::size_t begin,
                       std::size_t end) const noexcept {
    for (std::size_t r = begin; r < end; ++r) {
      detail::quantize_activation_row(kernels, p.scratch + r * scratch_stride(), s_x, p.out, r);
    }
  }

  std::size_t in_ = 0;
  FrontendOptions options_;
  std::vector<float> norm_weight_;
  std::vector<std::uint32_t> sign_mask_;  // 0x80000000 where the sign is -1
  float hadamard_scale_ = 1.0f;
};

BITLINEAR_NAMESPACE_END
