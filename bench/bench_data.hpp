// bench: the shapes, the test data of each shape (weights, activations, layers, baseline weights), and the
// float64 reference every baseline is checked against before it is timed.
#pragma once

#include <bitlinear/bitlinear.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "baselines/bf16_gemm.hpp"
#include "baselines/fp16_gemm.hpp"

namespace bench {

struct Shape {
  std::size_t out;
  std::size_t in;
  const char* model;  // which model's layer this is
  const char* role;
};

// BitNet b1.58 2B4T (hidden 2560, FFN 6912, 20 query heads and 5 key/value heads of 128, so k and v are 640 wide)
// and a 7B-class model (LLaMA-7B: hidden 4096, FFN 11008).
inline constexpr Shape all_shapes[] = {
    {2560, 2560, "2B4T", "q,o"},     {640, 2560, "2B4T", "k,v"},    {6912, 2560, "2B4T", "gate,up"},
    {2560, 6912, "2B4T", "down"},    {4096, 4096, "7B", "q,k,v,o"}, {11008, 4096, "7B", "gate,up"},
    {4096, 11008, "7B", "down"},
};
inline constexpr std::size_t all_batches[] = {1, 8, 32, 128, 512};
inline constexpr std::size_t max_batch = 512;

// Deterministic uniform values in [-1, 1) (splitmix64): fast enough for 45 M weights, no library dependence.
inline void fill_uniform(std::vector<float>& v, std::uint64_t seed) {
  std::uint64_t s = seed;
  for (float& f : v) {
    s += 0x9E3779B97F4A7C15ull;
    std::uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    f = static_cast<float>(static_cast<double>(z >> 40) * 0x1.0p-23 - 1.0);  // 24 random bits
  }
}

// How the reference rounds its inputs: as stored by each baseline.
enum class RefInputs { fp32, fp16_weights, bf16_both, half_both };

struct RefRow {
  std::vector<double> value;    // sum_k w[j][k] * x[k] in float64, for every j
  std::vector<double> abs_sum;  // sum_k |w[j][k] * x[k]|: the scale of the worst-case rounding error
};

// Everything one shape needs; built lazily, dropped when the next shape starts.
struct ShapeData {
  Shape shape;
  std::vector<float> w;  // [out][in], uniform in [-1, 1)
  std::vector<float> x;  // [max_batch][in], uniform in [-1, 1)
  std::vector<std::uint16_t> w_fp16, w_bf16;
  std::map<std::pair<int, int>, std::shared_ptr<void>> layers;  // (kind, isa) -> BitLinear<...>
  // (format column, group size, isa) -> GroupedLinear<...>
  std::map<std::tuple<std::size_t, std::size_t, int>, std::shared_ptr<void>> grouped_layers;
  std::map<std::pair<int, std::size_t>, RefRow> refs;           // (RefInputs, token)

  explicit ShapeData(const Shape& s) : shape(s), w(s.out * s.in), x(max_batch * s.in) {
    fill_uniform(w, 0x1234 + s.out * 7919 + s.in);
    fill_uniform(x, 0x5678 + s.in);
  }

  const std::vector<std::uint16_t>& fp16_weights() {
#if BENCH_X86
    if (w_fp16.empty()) {
      w_fp16.resize(w.size());
      fp16::to_half(w.data(), w.size(), w_fp16.data());
    }
#endif
    return w_fp16;
  }
  const std::vector<std::uint16_t>& bf16_weights() {
    if (w_bf16.empty()) {
      w_bf16.resize(w.size());
      for (std::size_t i = 0; i < w.size(); ++i) w_bf16[i] = bf16::from_float(w[i]);
    }
    return w_bf16;
  }

  template <class Format>
  const bitlinear::BitLinear<Format>& layer(bitlinear::Isa isa) {
    const std::pair<int, int> key{static_cast<int>(Format::bits_per_weight), static_cast<int>(isa)};
    auto it = layers.find(key);
    if (it == layers.end()) {
      bitlinear::Options options;
      options.isa = isa;
      auto built = std::make_shared<bitlinear::BitLinear<Format>>(
          bitlinear::BitLinear<Format>::from_float(w.data(), shape.out, shape.in, nullptr, options));
      it = layers.emplace(key, std::move(built)).first;
    }
    return *static_cast<const bitlinear::BitLinear<Format>*>(it->second.get());
  }

  // GroupedLinear<Format>::from_float of w, one scale per group of group_size weights of a row, no bias.
  template <class Format>
  const bitlinear::GroupedLinear<Format>& grouped(std::size_t group_size, bitlinear::Isa isa) {
    using Layer = bitlinear::GroupedLinear<Format>;
    const std::tuple<std::size_t, std::size_t, int> key{Layer::format_column, group_size, static_cast<int>(isa)};
    auto it = grouped_layers.find(key);
    if (it == grouped_layers.end()) {
      bitlinear::Options options;
      options.isa = isa;
      auto built =
          std::make_shared<Layer>(Layer::from_float(w.data(), shape.out, shape.in, group_size, nullptr, options));
      it = grouped_layers.emplace(key, std::move(built)).first;
    }
    return *static_cast<const Layer*>(it->second.get());
  }

  // Float64 reference of token t with the inputs rounded as `kind` stores them.
  const RefRow& reference(RefInputs kind, std::size_t t) {
    const std::pair<int, std::size_t> key{static_cast<int>(kind), t};
    auto it = refs.find(key);
    if (it != refs.end()) return it->second;
    const std::size_t in = shape.in;
    std::vector<double> xr(in);
    for (std::size_t k = 0; k < in; ++k) {
      const float v = x[t * in + k];
      xr[k] = kind == RefInputs::bf16_both   ? bf16::to_float(bf16::from_float(v))
              : kind == RefInputs::half_both ? half_of(v)
                                             : v;
    }
    std::vector<double> wr(in);
    RefRow row;
    row.value.resize(shape.out);
    row.abs_sum.resize(shape.out);
    for (std::size_t j = 0; j < shape.out; ++j) {
      for (std::size_t k = 0; k < in; ++k) {
        const std::size_t i = j * in + k;
        wr[k] = kind == RefInputs::fp32        ? static_cast<double>(w[i])
                : kind == RefInputs::bf16_both ? static_cast<double>(bf16::to_float(bf16_weights()[i]))
                                               : static_cast<double>(half_bits_to_float(fp16_weights()[i]));
      }
      double sum = 0.0, abs_sum = 0.0;
      for (std::size_t k = 0; k < in; ++k) {
        sum += wr[k] * xr[k];
        abs_sum += std::fabs(wr[k] * xr[k]);
      }
      row.value[j] = sum;
      row.abs_sum[j] = abs_sum;
    }
    return refs.emplace(key, std::move(row)).first->second;
  }

  static double half_of(float v) {
#if BENCH_X86
    std::uint16_t h = 0;
    fp16::to_half(&v, 1, &h);
    return fp16::half_to_float(h);
#else
    return v;
#endif
  }
  static float half_bits_to_float(std::uint16_t h) {
#if BENCH_X86
    return fp16::half_to_float(h);
#else
    (void)h;
    return 0.0f;
#endif
  }
};

// The data of a shape, built when first needed and kept: benchmarks run interleaved (harness::run), so shapes
// come back all the time (the full plan keeps about 1.3 GB).
inline ShapeData& shape_data(const Shape& s) {
  static std::map<std::pair<std::size_t, std::size_t>, std::unique_ptr<ShapeData>> shapes;
  auto& data = shapes[{s.out, s.in}];
  if (!data) data = std::make_unique<ShapeData>(s);
  return *data;
}

struct CheckResult {
  bool ok = true;
  double max_error = 0.0;  // max over checked outputs of |y - ref| / sum|w x|
  std::string message;
};

// Compares tokens 0 and batch-1 of y [batch][out] with the float64 reference. `tolerance` bounds
// |y - ref| / sum_k |w x| (normalized error).
inline CheckResult check_against_reference(ShapeData& d, RefInputs kind, const float* y, std::size_t batch,
                                           double tolerance) {
  CheckResult r;
  for (std::size_t t : {std::size_t{0}, batch - 1}) {
    const RefRow& ref = d.reference(kind, t);
    for (std::size_t j = 0; j < d.shape.out; ++j) {
      const double got = y[t * d.shape.out + j];
      const double err = std::fabs(got - ref.value[j]) / (ref.abs_sum[j] > 0 ? ref.abs_sum[j] : 1.0);
      if (!(err <= tolerance)) {  // also catches NaN
        r.ok = false;
        r.message = "token " + std::to_string(t) + " output " + std::to_string(j) + ": got " + std::to_string(got) +
                    ", float64 reference " + std::to_string(ref.value[j]) + " (normalized error " +
                    std::to_string(err) + " > tolerance " + std::to_string(tolerance) + ")";
        r.max_error = err;
        return r;
      }
      if (err > r.max_error) r.max_error = err;
    }
  }
  return r;
}

// Worst-case relative error bound of a sum of n products accumulated in a format with unit roundoff u, in any
// order (Higham, Accuracy and Stability of Numerical Algorithms, eq. 3.5): gamma_n = n u / (1 - n u), applied to
// sum |w x|. Products of fp16 or bf16 values are exact in float32, so only the additions count.
inline double gamma_bound(std::size_t n, double unit_roundoff) {
  const double nu = static_cast<double>(n) * unit_roundoff;
  return nu < 1.0 ? nu / (1.0 - nu) : 1.0;
}

}  // namespace bench
