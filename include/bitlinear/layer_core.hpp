// bitlinear: LayerCore, the half that BitLinear (layer.hpp) and GroupedLinear (grouped_layer.hpp) share: sizes,
// bias, packed codes, options and kernel row; the forward() overloads, quantize(), forward_quantized() and their
// argument checks. A layer class derives from LayerCore<itself> and supplies what differs between the kinds:
//   static constexpr std::size_t format_column      its column of the kernel grid (kernels/interface.hpp)
//   detail::PackedWeightsView weights() const        its codes as the kernels read them
//   detail::Epilogue epilogue() const                 its scales and bias as the kernels apply them
//   void check_activation_blocks(const ActivationsView&) const
//                                                     the block sizes of quantized activations it takes
//   std::size_t decode_row_bytes() const              weight bytes per output row (the decode split on a pool)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "activations.hpp"
#include "config.hpp"
#include "error.hpp"
#include "detail/aligned_buffer.hpp"
#include "kernels/grid.hpp"  // first of the kernel headers: it includes interface.hpp in the order that works
#include "detail/checked_size.hpp"
#include "detail/exact_float.hpp"
#include "detail/fp_environment.hpp"
#include "kernels/interface.hpp"
#include "isa.hpp"
#include "options.hpp"
#include "quantize.hpp"

BITLINEAR_NAMESPACE_BEGIN

class ThreadPool;  // thread_pool.hpp

namespace detail {

template <class Layer>
class LayerCore {
 public:
  // y[batch, out_features] = layer(x[batch, in_features]). Allocates the quantized activations; see the
  // workspace overload for an allocation-free call.
  void forward(const float* x, std::size_t batch, float* y) const { forward(x, batch, in_, y, out_); }

  // Strided: row t of x starts at x + t * x_stride, row t of y at y + t * y_stride.
  void forward(const float* x, std::size_t batch, std::size_t x_stride, float* y, std::size_t y_stride) const {
    // The extents of x and y are checked before the workspace is allocated: a bad stride with a huge batch is an
    // invalid_argument, not an allocation of the workspace it would need.
    check_forward_arguments(x, batch, x_stride, y != nullptr, y_stride);
    std::vector<unsigned char> workspace(workspace_size(batch));
    forward(x, batch, x_stride, y, y_stride, workspace.data(), workspace.size());
  }

  // Bytes of workspace forward() needs for `batch` rows (per_block / per_superblock activations need room for
  // block scales). Throws std::invalid_argument if that many bytes cannot exist (PTRDIFF_MAX; see
  // activation_workspace_size).
  std::size_t workspace_size(std::size_t batch) const {
    return activation_workspace_size(batch, in_, options_.activation_scale);
  }

  // Allocation-free forward: `workspace` is caller-owned memory of at least workspace_size(batch) bytes.
  void forward(const float* x, std::size_t batch, std::size_t x_stride, float* y, std::size_t y_stride,
               void* workspace, std::size_t workspace_bytes) const {
    check_forward_arguments(x, batch, x_stride, y != nullptr, y_stride);
    const MutableActivationsView acts =
        activation_view_in(workspace, workspace_bytes, batch, in_, options_.activation_scale);
    quantize_rows(*kernels_, x, batch, x_stride, options_.activation_scale, acts);
    run_matmul(acts, 0, out_, y, y_stride);  // acts are valid by construction: no need to re-check the padding
  }

  // Multithreaded forward on a ThreadPool (thread_pool.hpp; defined in parallel_forward.hpp, which
  // <bitlinear/bitlinear.hpp> includes). Quantization is split over rows of x and the matmul over chunks of
  // output rows claimed by the threads (docs/threads.md). Every output is computed from its own row and token
  // alone, so the result is bit-identical to forward() for every thread count and claim order. The workspace
  // overload performs no heap allocation. Calls on one pool from several threads run one at a time. Builds
  // without std::thread declare these and define none (config.hpp).
  void forward(const float* x, std::size_t batch, float* y, ThreadPool& pool) const;
  void forward(const float* x, std::size_t batch, std::size_t x_stride, float* y, std::size_t y_stride,
               ThreadPool& pool) const;
  void forward(const float* x, std::size_t batch, std::size_t x_stride, float* y, std::size_t y_stride,
               void* workspace, std::size_t workspace_bytes, ThreadPool& pool) const;

  // Quantizes activations the way this layer does (its activation scale mode and kernel family), so that
  // one quantization can feed several layers of the same in_features (e.g. q, k and v projections).
  void quantize(const float* x, std::size_t batch, std::size_t x_stride, QuantizedActivations& out) const {
    require_not_empty();
    out.quantize(x, batch, in_, x_stride, options_.activation_scale, kernels_->isa);
  }

  // The lower layer for engines: computes outputs [row_begin, row_end) of every row of already-quantized
  // activations, writing y[t * y_stride + j] for t < acts.batch and j in the range, nothing else. Different
  // ranges may run concurrently on different threads; results do not depend on how the range is split.
  void forward_quantized(const ActivationsView& acts, std::size_t row_begin, std::size_t row_end, float* y,
                         std::size_t y_stride) const {
    check_activations(acts);
    check_output(y != nullptr, acts.batch, y_stride);
    BITLINEAR_REQUIRE(row_begin <= row_end && row_end <= out_,
                      "output range [" + std::to_string(row_begin) + ", " + std::to_string(row_end) +
                          ") is not within [0, out_features = " + std::to_string(out_) + "]");
    run_matmul(acts, row_begin, row_end, y, y_stride);
  }

  // True for a moved-from layer.
  bool empty() const noexcept { return out_ == 0; }
  std::size_t in_features() const noexcept { return in_; }
  std::size_t out_features() const noexcept { return out_; }
  Options options() const noexcept { return options_; }
  // The kernel family this layer runs (never Isa::automatic).
  Isa isa() const noexcept { return kernels_->isa; }
  // True if the family runs this format with a kernel of its own; false where it runs the shared fallback
  // (docs/design.md, "The kernel grid").
  bool native_kernel() const noexcept { return kernels_->formats[Layer::format_column].native; }
  bool has_bias() const noexcept { return has_bias_; }
  // The bias (zeros if the layer has none), out_features values.
  const std::vector<float>& bias() const noexcept { return bias_; }
  // Bytes of the packed codes (canonical and in memory: an execution layout only reorders blocks).
  std::size_t packed_weights_size() const noexcept { return packed_.size(); }

 protected:
  // Sizes and options are checked by the layer's own shape check first; this takes the bias (finite values
  // only) and resolves the kernel family (std::runtime_error if options.isa cannot run here).
  LayerCore(std::size_t out_features, std::size_t in_features, std::size_t packed_bytes, const float* bias,
            Options options)
      : out_(out_features),
        in_(in_features),
        has_bias_(bias != nullptr),
        bias_(out_features, 0.0f),
        packed_(packed_bytes),
        options_(options),
        kernels_(&kernel_table(resolve_isa(options.isa))) {
    if (bias == nullptr) return;
    for (std::size_t j = 0; j < out_features; ++j) {
      if (!is_finite_bits(bias[j])) {
        fail_invalid_argument("bitlinear: bias[" + std::to_string(j) + "] = " + float_text(bias[j]) +
                              " is not finite; bias values must be finite numbers");
      }
      bias_[j] = bias[j];
    }
  }

  LayerCore(const LayerCore&) = default;
  LayerCore& operator=(const LayerCore&) = default;
  // Leaves `other` empty (sizes 0, no bias, no codes); it keeps its kernel row. Lists every member: a new member
  // must be added here and in swap_core() too.
  LayerCore(LayerCore&& other) noexcept
      : out_(std::exchange(other.out_, 0)),
        in_(std::exchange(other.in_, 0)),
        has_bias_(std::exchange(other.has_bias_, false)),
        bias_(std::exchange(other.bias_, {})),
        packed_(std::exchange(other.packed_, {})),
        options_(std::exchange(other.options_, {})),
        kernels_(other.kernels_) {}
  LayerCore& operator=(LayerCore&&) = delete;  // layers move-assign by swapping (each layer's operator=)
  ~LayerCore() = default;

  void swap_core(LayerCore& other) noexcept {
    std::swap(out_, other.out_);
    std::swap(in_, other.in_);
    std::swap(has_bias_, other.has_bias_);
    bias_.swap(other.bias_);
    std::swap(packed_, other.packed_);
    std::swap(options_, other.options_);
    std::swap(kernels_, other.kernels_);
  }

  // The limits every layer shape obeys, in the order the messages name them.
  static void check_core_shape(std::size_t out_features, std::size_t in_features) {
    BITLINEAR_REQUIRE(out_features > 0, "out_features is 0; it must be at least 1");
    BITLINEAR_REQUIRE(in_features > 0, "in_features is 0; it must be at least 1");
    BITLINEAR_REQUIRE(in_features <= max_in_features, "in_features " + std::to_string(in_features) +
                                                          " exceeds the limit of 2^20 = 1048576 (int32 accumulation)");
    // 2^40 weights, compared in 64-bit arithmetic whatever the width of size_t.
    BITLINEAR_REQUIRE(static_cast<std::uint64_t>(out_features) <= (std::uint64_t{1} << 40) / in_features,
                      "out_features " + std::to_string(out_features) + " x in_features " +
                          std::to_string(in_features) + " exceeds the limit of 2^40 weights");
  }

  // The float weight matrix (and unpacked_weights()) and the packed codes must be addressable: out * in * 4 and
  // out * packed_row_bytes at most PTRDIFF_MAX bytes (only a 32-bit size_t can fail this).
  static void check_addressable(std::size_t out_features, std::size_t in_features, std::size_t packed_row_bytes) {
    auto what = [&] {
      return "a layer of out_features " + std::to_string(out_features) + " x in_features " + std::to_string(in_features);
    };
    checked_mul(checked_mul(out_features, in_features, what), sizeof(float), what);
    checked_mul(out_features, packed_row_bytes, what);
  }

  void require_not_empty() const {
    BITLINEAR_REQUIRE(!empty(), "the layer is empty (it was moved from); assign a layer to it before use");
  }

  // Takes y's nullness, not y: GCC warns (maybe-uninitialized) when a pointer to a not-yet-written output is
  // passed as const float*.
  void check_output(bool y_present, std::size_t batch, std::size_t y_stride) const {
    require_not_empty();
    BITLINEAR_REQUIRE(y_present, "output y is null");
    BITLINEAR_REQUIRE(batch > 0, "batch is 0; it must be at least 1");
    BITLINEAR_REQUIRE(y_stride >= out_, "y_stride " + std::to_string(y_stride) + " is smaller than out_features " +
                                            std::to_string(out_));
    check_rows_extent(batch, y_stride, out_, sizeof(float), "output y");
  }

  void check_forward_arguments(const float* x, std::size_t batch, std::size_t x_stride, bool y_present,
                               std::size_t y_stride) const {
    check_output(y_present, batch, y_stride);
    check_activation_input(x, batch, in_, x_stride);
  }

  void check_activations(const ActivationsView& a) const {
    require_not_empty();
    BITLINEAR_REQUIRE(a.q != nullptr && a.scale != nullptr && a.sum != nullptr, "quantized activations are null");
    BITLINEAR_REQUIRE(a.batch > 0, "quantized activations hold batch 0; it must be at least 1");
    static_cast<const Layer&>(*this).check_activation_blocks(a);
    BITLINEAR_REQUIRE(a.in_features == in_, "quantized activations have in_features " + std::to_string(a.in_features) +
                                                " but the layer has " + std::to_string(in_));
    BITLINEAR_REQUIRE(a.stride >= activation_stride(in_) && a.stride % activation_row_multiple == 0,
                      "quantized activations have stride " + std::to_string(a.stride) +
                          "; it must be a multiple of 512 and at least activation_stride(in_features) = " +
                          std::to_string(activation_stride(in_)));
    check_rows_extent(a.batch, a.stride, a.stride, 1, "quantized activations");
    if (a.block_size != 0) {
      BITLINEAR_REQUIRE(a.block_scale != nullptr, "per-block quantized activations have no block scales (null)");
      const std::size_t blocks = block_count_of(in_, a.block_size);
      BITLINEAR_REQUIRE(a.block_stride >= blocks,
                        "quantized activations have block_stride " + std::to_string(a.block_stride) +
                            "; it must be at least ceil(in_features / block_size) = " + std::to_string(blocks));
      check_rows_extent(a.batch, a.block_stride, a.block_stride, sizeof(float), "activation block scales");
    }
    const std::size_t pad_end = activation_stride(in_);
    for (std::size_t t = 0; t < a.batch; ++t) {
      for (std::size_t k = in_; k < pad_end; ++k) {
        BITLINEAR_REQUIRE(a.q[t * a.stride + k] == 0, "quantized activations row " + std::to_string(t) +
                                                          " has a nonzero value in its padding at " + std::to_string(k));
      }
    }
  }

  // forward_quantized without the argument checks (callers have checked or built acts themselves).
  void run_matmul(const ActivationsView& acts, std::size_t row_begin, std::size_t row_end, float* y,
                  std::size_t y_stride) const noexcept {
    if (row_begin == row_end) return;
    const FpEnvironmentGuard fp_environment;  // ThreadPool tasks call this too: each pins its own thread
    const Layer& layer = static_cast<const Layer&>(*this);
    kernels_->formats[Layer::format_column].matmul(layer.weights(), acts, row_begin, row_end, layer.epilogue(), y,
                                                   y_stride);
  }

  std::size_t out_ = 0;
  std::size_t in_ = 0;
  bool has_bias_ = false;
  std::vector<float> bias_;
  AlignedBytes packed_;
  Options options_;
  // The layer's row of the kernel grid (never null: a moved-from layer keeps it).
  const KernelTable* kernels_ = &kernel_table(Isa::scalar);
};

}  // namespace detail

BITLINEAR_NAMESPACE_END
