// bitlinear internal: size arithmetic on caller-supplied counts (batch, strides, shapes) that cannot wrap.
//
// Every product or sum of counts a caller controls goes through these helpers: a result that does not fit in
// std::size_t, or a buffer that would span more than PTRDIFF_MAX bytes (the largest object pointer arithmetic
// can address), is a bad argument and throws std::invalid_argument naming the quantity, never a wrapped size.
// Limits that are properties of the format (2^40 weights per layer) are compared in 64-bit arithmetic, so that
// a 32-bit size_t build accepts the same layers (as far as its address space allows).
#pragma once
#include "internal_only.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "../config.hpp"
#include "../error.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// The largest buffer (in bytes) any size computed here may describe.
inline constexpr std::size_t max_buffer_bytes = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());

[[noreturn]] inline void throw_size_overflow(const std::string& what) {
  throw_invalid_argument(what + " does not fit in memory: it exceeds PTRDIFF_MAX = " + std::to_string(max_buffer_bytes) +
                         " bytes");
}

// a * b; throws (naming `what`, built only on failure) if the product exceeds `limit` (default max_buffer_bytes).
template <class What>
inline std::size_t checked_mul(std::size_t a, std::size_t b, What&& what, std::size_t limit = max_buffer_bytes) {
  if (a != 0 && b > limit / a) throw_size_overflow(what());
  return a * b;
}

// a + b; throws if the sum exceeds `limit`.
template <class What>
inline std::size_t checked_add(std::size_t a, std::size_t b, What&& what, std::size_t limit = max_buffer_bytes) {
  if (b > limit || a > limit - b) throw_size_overflow(what());
  return a + b;
}

// Checks that `rows` rows of `width` elements of `element_bytes` each, `stride` elements apart, span a buffer of
// at most max_buffer_bytes: (rows - 1) * stride + width elements. rows >= 1, stride >= width are checked by the
// callers. `name` says which buffer ("input x", "output y").
inline void check_rows_extent(std::size_t rows, std::size_t stride, std::size_t width, std::size_t element_bytes,
                              const char* name) {
  const std::size_t max_elements = max_buffer_bytes / element_bytes;
  auto what = [&] {
    return std::string(name) + " of " + std::to_string(rows) + " rows with stride " + std::to_string(stride) +
           " (row width " + std::to_string(width) + ")";
  };
  const std::size_t span = checked_mul(rows - 1, stride, what, max_elements);
  checked_add(span, width, what, max_elements);
}

// out_features * in_features as a 64-bit count, whatever the width of size_t (both are at least 1).
inline constexpr std::uint64_t weight_count(std::size_t out_features, std::size_t in_features) noexcept {
  return static_cast<std::uint64_t>(out_features) * static_cast<std::uint64_t>(in_features);
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
