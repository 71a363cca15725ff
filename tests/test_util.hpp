// Shared helpers for the bitlinear tests.
#pragma once

#include <bitlinear/bitlinear.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace bitlinear_test {

// Every kernel family this build has and this CPU runs, scalar first.
inline std::vector<bitlinear::Isa> runnable_isas() {
  std::vector<bitlinear::Isa> isas;
  for (bitlinear::Isa isa : bitlinear::all_isas) {
    if (bitlinear::detail::isa_runnable(isa)) isas.push_back(isa);
  }
  return isas;
}

inline std::string isa_label(bitlinear::Isa isa) { return std::string(bitlinear::isa_name(isa)); }

inline std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

inline bool same_bits(float a, float b) {
  std::uint32_t ua = 0, ub = 0;
  std::memcpy(&ua, &a, 4);
  std::memcpy(&ub, &b, 4);
  return ua == ub;
}

// NaN and finiteness by bit pattern: the exactness tests also run with -ffast-math (.ci/steps/50-fastmath.sh),
// under which std::isnan / std::isfinite may fold to constants.
inline bool is_nan(float v) {
  std::uint32_t u = 0;
  std::memcpy(&u, &v, 4);
  return (u & 0x7fffffffu) > 0x7f800000u;
}
inline bool is_finite(float v) {
  std::uint32_t u = 0;
  std::memcpy(&u, &v, 4);
  return (u & 0x7fffffffu) < 0x7f800000u;
}

// A buffer whose data() is deliberately misaligned by `offset` bytes from a 64-byte boundary.
template <class T>
class Misaligned {
 public:
  Misaligned(std::size_t n, std::size_t offset) : storage_(n * sizeof(T) + 128), offset_(offset), n_(n) {
    const auto address = reinterpret_cast<std::uintptr_t>(storage_.data());
    start_ = (64 - address % 64) % 64 + offset_;
  }
  T* data() { return reinterpret_cast<T*>(storage_.data() + start_); }
  std::size_t size() const { return n_; }

 private:
  std::vector<unsigned char> storage_;
  std::size_t offset_, start_ = 0, n_;
};

// Canonical packed weights (format.hpp) laid out with `group_rows` rows per interleaved group (kernels.hpp), in
// a buffer of exactly the matrix's size (so a kernel reading past it trips the sanitizers), with its view.
class LaidOutWeights {
 public:
  LaidOutWeights(const std::uint8_t* canonical, std::size_t out, std::size_t in, std::size_t row_bytes,
                 std::size_t group_rows)
      : bytes_(out * row_bytes) {
    view_ = {bytes_.data(), out, in, row_bytes, group_rows};
    bitlinear::detail::scatter_matrix(view_, canonical);
  }
  template <class Layer>
  LaidOutWeights(const Layer& layer, std::size_t group_rows)
      : LaidOutWeights(layer.packed_weights().data(), layer.out_features(), layer.in_features(),
                       Layer::format_type::packed_row_bytes(layer.in_features()), group_rows) {}
  const bitlinear::detail::PackedWeightsView& view() const { return view_; }

 private:
  bitlinear::detail::AlignedBytes bytes_;
  bitlinear::detail::PackedWeightsView view_;
};

// Group sizes every kernel must handle: canonical (1), the families' own (2, 4) and odd ones.
inline const std::size_t kLayoutGroupRows[] = {1, 2, 3, 4, 8};

// What f() threw as std::invalid_argument; names another exception type, or that nothing was thrown.
template <class F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}

}  // namespace bitlinear_test
