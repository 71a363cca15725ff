// The grouped kernels (group-scaled weights, group 128) beside the per-tensor ternary kernel of the same family,
// on the BitNet b1.58 2B4T shapes, one thread, kernels called through the grid slot (det::kernel_table):
//   hot/<format>/<out>x<in>/b1       batch 1, the same weights every call (in cache where they fit)
//   stream/<format>/<out>x<in>/b1    batch 1, rotating over >= 256 MiB of copies (weights and scales from DRAM),
//                                    paired with read/<format>/<out>x<in>: a plain read of the same bytes
//                                    (harness.hpp: 4 streams, interleaved; vs_read = stream GB/s / read GB/s)
//   gemm/<format>/<out>x<in>/b128    batch 128 (prefill), hot
// <format>: ternary (per tensor), ternary_g128 (2-bit, one scale per 128 weights), compact_g128, binary_g128.
// The family: BITLINEAR_ISA if set (e.g. avxvnni), otherwise the best this CPU runs. The summary prints the
// grouped / per-tensor speed ratios and stream / read, medians of one run.
#include <benchmark/benchmark.h>

#include <bitlinear/bitlinear.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "harness.hpp"

namespace {

namespace bl = bitlinear;
namespace det = bitlinear::detail;
namespace harness = bench::harness;

struct Shape {
  std::size_t out, in;
};
const Shape kShapes[] = {{2560, 2560}, {640, 2560}, {6912, 2560}, {2560, 6912}};
constexpr std::size_t kGroup = 128;

enum class Kind { ternary, ternary_g128, compact_g128, binary_g128 };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::ternary: return "ternary";
    case Kind::ternary_g128: return "ternary_g128";
    case Kind::compact_g128: return "compact_g128";
    default: return "binary_g128";
  }
}
det::WeightFormat format_of(Kind k) {
  switch (k) {
    case Kind::ternary: return det::WeightFormat::ternary;
    case Kind::ternary_g128: return det::WeightFormat::ternary_grouped;
    case Kind::compact_g128: return det::WeightFormat::ternary_compact_grouped;
    default: return det::WeightFormat::binary_grouped;
  }
}

bl::Isa bench_isa() {
  static const bl::Isa isa = [] {
    const char* env = std::getenv("BITLINEAR_ISA");
    bl::Isa chosen = det::best_isa();
    if (env != nullptr && *env != '\0' && !det::find_isa(env, chosen)) chosen = det::best_isa();
    return det::isa_runnable(chosen) ? chosen : det::best_isa();
  }();
  return isa;
}

// One copy of a layer: packed weights (64-byte aligned) and its group scales.
struct Weights {
  harness::Bytes packed;
  std::vector<float> scales;
};

template <class Format>
std::vector<std::uint8_t> random_packed(const Shape& s, bool binary) {
  const std::size_t row_bytes = Format::packed_row_bytes(s.in);
  std::vector<std::uint8_t> packed(s.out * row_bytes, Format::zero_byte);
  std::mt19937 rng(7);
  for (std::size_t j = 0; j < s.out; ++j) {
    for (std::size_t k = 0; k < s.in; ++k) {
      const int c = static_cast<int>(rng() % 3) - 1;
      Format::set_code(packed.data() + j * row_bytes, k, binary ? (c >= 0 ? 1 : -1) : c);
    }
  }
  return packed;
}

// The bytes of one layer, generated once per format and shape; every copy (hot or cold set) is made from them.
struct Source {
  std::vector<std::uint8_t> packed;
  std::vector<float> scales;
};
const Source& source_of(Kind k, const Shape& s) {
  static std::map<std::pair<int, std::pair<std::size_t, std::size_t>>, Source> sources;
  auto key = std::make_pair(static_cast<int>(k), std::make_pair(s.out, s.in));
  auto it = sources.find(key);
  if (it != sources.end()) return it->second;
  Source src;
  src.packed = k == Kind::compact_g128  ? random_packed<bl::TernaryCompact>(s, false)
               : k == Kind::binary_g128 ? random_packed<bl::Binary>(s, true)
                                        : random_packed<bl::Ternary>(s, false);
  if (k != Kind::ternary) {
    src.scales.resize(s.out * ((s.in + kGroup - 1) / kGroup));
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> dist(0.01f, 0.1f);
    for (float& v : src.scales) v = dist(rng);
  }
  return sources.emplace(key, std::move(src)).first->second;
}

Weights make_weights(Kind k, const Shape& s) {
  const Source& src = source_of(k, s);
  return Weights{harness::Bytes(src.packed), src.scales};
}

std::size_t weight_bytes(Kind k, const Shape& s) {
  const std::size_t packed = k == Kind::compact_g128  ? bl::packed_size<bl::TernaryCompact>(s.out, s.in)
                             : k == Kind::binary_g128 ? bl::packed_size<bl::Binary>(s.out, s.in)
                                                      : bl::packed_size<bl::Ternary>(s.out, s.in);
  return packed + (k == Kind::ternary ? 0 : s.out * ((s.in + kGroup - 1) / kGroup) * sizeof(float));
}

std::string key_of(Kind k, const Shape& s) {
  return std::string(kind_name(k)) + "/" + std::to_string(s.out) + "x" + std::to_string(s.in);
}

// Random int8 activations of `batch` tokens, per token scale.
struct Activations {
  std::vector<std::int8_t> q;
  std::vector<float> scale;
  std::vector<std::int32_t> sum;
  bl::ActivationsView view;
};
Activations make_activations(std::size_t batch, std::size_t in) {
  Activations a;
  const std::size_t stride = bl::activation_stride(in);
  a.q.assign(batch * stride, 0);
  a.scale.assign(batch, 20.0f);
  a.sum.assign(batch, 0);
  std::mt19937 rng(3);
  for (std::size_t t = 0; t < batch; ++t) {
    for (std::size_t k = 0; k < in; ++k) {
      a.q[t * stride + k] = static_cast<std::int8_t>(static_cast<int>(rng() % 255) - 127);
      a.sum[t] += a.q[t * stride + k];
    }
  }
  a.view = {a.q.data(), a.scale.data(), a.sum.data(), batch, in, stride, nullptr, 0, 0};
  return a;
}

void bm_kernel(benchmark::State& state, Kind k, Shape s, std::size_t batch, bool stream) {
  const std::size_t row_bytes = weight_bytes(k, s) - (k == Kind::ternary ? 0 : s.out * ((s.in + kGroup - 1) / kGroup) * 4);
  const std::size_t bytes = weight_bytes(k, s);
  static std::map<std::string, Weights> hot_weights;
  auto it = hot_weights.find(key_of(k, s));
  if (it == hot_weights.end()) it = hot_weights.emplace(key_of(k, s), make_weights(k, s)).first;
  const Weights& hot = it->second;
  const std::vector<Weights>* copies =
      stream ? &harness::cold_set<Weights>(key_of(k, s), bytes, [&] { return make_weights(k, s); }) : nullptr;
  harness::Cursor next(copies != nullptr ? copies->size() : 1);
  const Activations a = make_activations(batch, s.in);
  const std::vector<float> bias(s.out, 0.0f);
  std::vector<float> y(batch * s.out);
  const det::FormatKernels& slot = det::kernel_table(bench_isa())[format_of(k)];
  det::Epilogue e;
  e.beta = 0.05f;
  e.s_w = 20.0f;
  e.bias = bias.data();
  e.group_size = kGroup;
  e.groups_per_row = (s.in + kGroup - 1) / kGroup;
  const std::size_t packed_row = row_bytes / s.out;
  for (auto _ : state) {
    const Weights& w = copies != nullptr ? (*copies)[next.next()] : hot;
    const det::PackedWeightsView view{w.packed.data(), s.out, s.in, packed_row, 1};
    e.group_scale = w.scales.data();
    slot.matmul(view, a.view, 0, s.out, e, y.data(), s.out);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
  state.SetLabel(std::string(bl::isa_name(bench_isa())) + (slot.native ? "" : " (fallback)"));
}

constexpr Kind kKinds[] = {Kind::ternary, Kind::ternary_g128, Kind::compact_g128, Kind::binary_g128};

void print_summary(const harness::Results& r) {
  std::printf("\nfamily %s; speed relative to per-tensor ternary (time ternary / time format), medians:\n",
              std::string(bl::isa_name(bench_isa())).c_str());
  std::printf("%-12s %-14s %10s %10s %10s %12s\n", "shape", "format", "hot b1", "stream b1", "gemm b128",
              "stream/read");
  for (const Shape& s : kShapes) {
    for (Kind k : kKinds) {
      const std::string tail = key_of(k, s), base = key_of(Kind::ternary, s);
      const auto ratio = [&](const std::string& what, const std::string& suffix) {
        const double t = r.seconds(what + "/" + tail + suffix), t0 = r.seconds(what + "/" + base + suffix);
        return t > 0 && t0 > 0 ? t0 / t : 0.0;
      };
      const double stream = r.seconds("stream/" + tail + "/b1"), read = r.seconds("read/" + tail);
      std::printf("%-12s %-14s %10.3f %10.3f %10.3f %12.3f\n", (std::to_string(s.out) + "x" + std::to_string(s.in)).c_str(),
                  kind_name(k), ratio("hot", "/b1"), ratio("stream", "/b1"), ratio("gemm", "/b128"),
                  stream > 0 && read > 0 ? stream / read : 0.0);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto configure = [](benchmark::internal::Benchmark* b) {
    b->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(0.1);
  };
  for (const Shape& s : kShapes) {
    for (Kind k : kKinds) {
      const std::string tail = key_of(k, s);
      configure(benchmark::RegisterBenchmark(("hot/" + tail + "/b1").c_str(),
                                             [=](benchmark::State& st) { bm_kernel(st, k, s, 1, false); }));
      harness::add_pair(
          "stream/" + tail + "/b1", [=](benchmark::State& st) { bm_kernel(st, k, s, 1, true); }, "read/" + tail,
          {weight_bytes(k, s), 1, true, harness::twin_streams}, harness::Rate::gb_s, configure);
      configure(benchmark::RegisterBenchmark(("gemm/" + tail + "/b128").c_str(),
                                             [=](benchmark::State& st) { bm_kernel(st, k, s, 128, false); }));
    }
  }
  benchmark::AddCustomContext("bitlinear_isa", std::string(bl::isa_name(bench_isa())));
  return harness::run(argc, argv, print_summary);
}
