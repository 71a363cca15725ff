// bitlinear against the layers it replaces: TernaryLinear / BinaryLinear under every kernel family this CPU runs,
// end to end and kernel only, and the group-scaled layers (GroupedTernaryLinear, GroupedCompactTernaryLinear,
// GroupedBinaryLinear, group 128) under the family Isa::automatic picks, end to end, against FP16 (F16C + FP32
// FMA), FP32 (Eigen and a plain loop), Eigen::half and BF16 (AVX512-BF16), on the shapes of BitNet b1.58 2B4T
// and a 7B-class model, batch 1 to 512, single thread.
//
// Benchmark names: <impl>/<out>x<in>/b<batch>/<hot|stream|stream2>, and memread/<MiB>MiB, memread2/512MiB for the
// bandwidth table.
//   impl: ternary.<family>.e2e     float x in, float y out (activation quantization included)
//         ternary.<family>.kernel  forward_quantized on activations quantized beforehand
//         binary.<family>.{e2e,kernel}
//         ternary_g128.<family>.e2e  compact_g128.<family>.e2e  binary_g128.<family>.e2e
//                                 the grouped layers (2-bit, 1.6-bit, 1-bit codes, one float scale per 128 weights
//                                 of a row); <family>: what Isa::automatic picks (BITLINEAR_ISA, else the best)
//         fp16.f16c_fma  fp32.eigen  fp32.loop  half.eigen  bf16.avx512bf16
//         read.ternary  read.binary  read.ternary_g128  read.compact_g128  read.binary_g128
//                       the plain read of a layer's bytes in 4 streams per thread (batch 1 only): the roofline
//                       twin of every family's e2e row of that kind, shape and mode (harness.hpp)
//   hot: one layer reused every call; stream: rotates over >= 256 MiB of copies, so weights come from DRAM;
//   stream2: as stream on a ThreadPool(2) (the read twin: 2 threads reading one half each).
// Runs with random interleaving (harness::run), so each twin is measured in the same repetition set as its
// kernels; their vs_read counter (kernel bytes/s over the twin's) is what bench/summarize.py calls % of roofline.
// Counters: bytes (weight bytes a call reads: packed layer + scale and bias for bitlinear; packed codes + group
// scales (4 bytes each) + bias for the grouped layers), bias_bytes (the bias's part of bytes), weights_per_s,
// weight_GBps (bytes per second), GOPS (2 * out * in * batch per second), check_error (baselines: normalized
// error against the float64 reference, checked before timing; bitlinear families other than scalar: 0 when
// bit-identical to scalar).
//
// Flags: --quick (a smaller matrix, 1-2 minutes), then any Google Benchmark flag (--benchmark_filter=...).
#include <benchmark/benchmark.h>

#include <bitlinear/bitlinear.hpp>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "baselines/bf16_gemm.hpp"
#include "baselines/cpu.hpp"
#include "baselines/eigen_gemm.hpp"
#include "baselines/float_loop.hpp"
#include "baselines/fp16_gemm.hpp"
#include "bench_data.hpp"
#include "harness.hpp"

namespace bench {
namespace {

using bitlinear::Isa;

// How long each benchmark measures: headline rows get >= 5 repetitions (their median is reported); the batch-1
// bitlinear rows and their read twins >= pair_repetitions.
constexpr int pair_repetitions = 9;
struct Timing {
  double min_time;
  int repetitions;
};
struct Plan {
  bool quick = false;
  Timing headline{0.05, 5};
  Timing secondary{0.02, 3};
};

void set_counters(benchmark::State& state, const Shape& s, std::size_t batch, double bytes) {
  using benchmark::Counter;
  state.counters["out"] = static_cast<double>(s.out);
  state.counters["in"] = static_cast<double>(s.in);
  state.counters["batch"] = static_cast<double>(batch);
  state.counters["bytes"] = bytes;
  state.counters["weights_per_s"] = Counter(static_cast<double>(s.out * s.in), Counter::kIsIterationInvariantRate);
  state.counters["weight_GBps"] = Counter(bytes * 1e-9, Counter::kIsIterationInvariantRate);
  state.counters["GOPS"] = Counter(2e-9 * static_cast<double>(s.out * s.in * batch), Counter::kIsIterationInvariantRate);
}

// Result of a correctness check, made once per benchmark name (repetitions reuse it).
std::map<std::string, CheckResult>& checks() {
  static std::map<std::string, CheckResult> done;
  return done;
}
// Runs `check` the first time `name` is seen; returns false (and marks the benchmark failed) if it failed.
bool checked(benchmark::State& state, const std::string& name, const std::function<CheckResult()>& check) {
  auto it = checks().find(name);
  if (it == checks().end()) it = checks().emplace(name, check()).first;
  state.counters["check_error"] = it->second.max_error;
  if (!it->second.ok) {
    state.SkipWithError(("correctness check failed: " + it->second.message).c_str());
    return false;
  }
  return true;
}

std::string shape_name(const Shape& s) { return std::to_string(s.out) + "x" + std::to_string(s.in); }

// ---- bitlinear ----
template <class Format>
void bm_bitlinear(benchmark::State& state, Shape s, std::size_t batch, Isa isa, bool kernel_only, bool stream,
                  std::size_t threads = 1) {
  ShapeData& d = shape_data(s);
  const bitlinear::BitLinear<Format>& layer = d.template layer<Format>(isa);
  if (isa != Isa::scalar) {  // the family must give the scalar reference's numbers, bit for bit
    const bool ok = checked(state, std::string(Format::name) + "/" + std::string(bitlinear::isa_name(isa)) + "/" +
                                       shape_name(s),
                            [&] {
                              CheckResult r;
                              const auto& ref = d.template layer<Format>(Isa::scalar);
                              std::vector<float> a(s.out), b(s.out);
                              layer.forward(d.x.data(), 1, a.data());
                              ref.forward(d.x.data(), 1, b.data());
                              if (std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) != 0) {
                                r.ok = false;
                                r.max_error = 1.0;
                                r.message = "differs from the scalar family on token 0";
                              }
                              return r;
                            });
    if (!ok) return;
  }
  const double bytes = static_cast<double>(layer.packed_weights_size() + sizeof(float) * (s.out + 1));
  std::vector<float> y(batch * s.out);
  if (kernel_only) {
    bitlinear::QuantizedActivations q;
    layer.quantize(d.x.data(), batch, s.in, q);
    for (auto _ : state) {
      layer.forward_quantized(q.view(), 0, s.out, y.data(), s.out);
      benchmark::ClobberMemory();
    }
  } else if (!stream) {
    std::vector<unsigned char> workspace(layer.workspace_size(batch));
    for (auto _ : state) {
      layer.forward(d.x.data(), batch, s.in, y.data(), s.out, workspace.data(), workspace.size());
      benchmark::ClobberMemory();
    }
  } else {
    using Layer = bitlinear::BitLinear<Format>;
    // One cold set per layer (stream and stream2 rows share it).
    std::vector<Layer>& copies = harness::cold_set<Layer>(
        std::string(Format::name) + "/" + std::string(bitlinear::isa_name(isa)) + "/" + shape_name(s),
        static_cast<std::size_t>(bytes), [&] { return Layer(layer); });
    std::vector<unsigned char> workspace(layer.workspace_size(batch));
    std::size_t i = 0;
    if (threads > 1) {  // decode on all cores: the pooled forward (each thread streams its own part of the rows)
      bitlinear::ThreadPool& pool = harness::pool_of(threads);
      for (auto _ : state) {
        copies[i].forward(d.x.data(), batch, s.in, y.data(), s.out, workspace.data(), workspace.size(), pool);
        benchmark::ClobberMemory();
        i = i + 1 == copies.size() ? 0 : i + 1;
      }
    } else {
      for (auto _ : state) {
        copies[i].forward(d.x.data(), batch, s.in, y.data(), s.out, workspace.data(), workspace.size());
        benchmark::ClobberMemory();
        i = i + 1 == copies.size() ? 0 : i + 1;
      }
    }
  }
  set_counters(state, s, batch, bytes);
  state.counters["bias_bytes"] = static_cast<double>(sizeof(float) * s.out);
}

// ---- group-scaled layers (GroupedLinear: one float scale per group of a row, the layout of GGUF ternary and
// binary models), under the family Isa::automatic picks ----
constexpr std::size_t group_size = 128;

// Bytes a grouped layer of this shape reads per call: packed codes, one float per group, the bias (out floats).
template <class Format>
std::size_t grouped_bytes(const Shape& s) {
  return bitlinear::packed_size<Format>(s.out, s.in) + sizeof(float) * (s.out * (s.in / group_size) + s.out);
}

template <class Format>
void bm_grouped(benchmark::State& state, Shape s, std::size_t batch, bool stream) {
  using Layer = bitlinear::GroupedLinear<Format>;
  ShapeData& d = shape_data(s);
  const Layer& layer = d.template grouped<Format>(group_size, Isa::automatic);
  const std::string key = std::string("grouped ") + Format::name + "/g" + std::to_string(group_size) + "/" +
                          std::string(bitlinear::isa_name(layer.isa())) + "/" + shape_name(s);
  if (layer.isa() != Isa::scalar) {  // as the per-tensor rows: the scalar reference's numbers, bit for bit
    const bool ok = checked(state, key, [&] {
      CheckResult r;
      const Layer& ref = d.template grouped<Format>(group_size, Isa::scalar);
      std::vector<float> a(s.out), b(s.out);
      layer.forward(d.x.data(), 1, a.data());
      ref.forward(d.x.data(), 1, b.data());
      if (std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) != 0) {
        r.ok = false;
        r.max_error = 1.0;
        r.message = "differs from the scalar family on token 0";
      }
      return r;
    });
    if (!ok) return;
  }
  const std::size_t bytes = layer.packed_weights_size() + sizeof(float) * (layer.group_scales().size() + s.out);
  if (bytes != grouped_bytes<Format>(s)) {  // the read twin was registered with grouped_bytes
    state.SkipWithError("the layer's bytes differ from grouped_bytes()");
    return;
  }
  std::vector<float> y(batch * s.out);
  std::vector<unsigned char> workspace(layer.workspace_size(batch));
  if (!stream) {
    for (auto _ : state) {
      layer.forward(d.x.data(), batch, s.in, y.data(), s.out, workspace.data(), workspace.size());
      benchmark::ClobberMemory();
    }
  } else {
    std::vector<Layer>& copies = harness::cold_set<Layer>(key, bytes, [&] { return Layer(layer); });
    std::size_t i = 0;
    for (auto _ : state) {
      copies[i].forward(d.x.data(), batch, s.in, y.data(), s.out, workspace.data(), workspace.size());
      benchmark::ClobberMemory();
      i = i + 1 == copies.size() ? 0 : i + 1;
    }
  }
  set_counters(state, s, batch, static_cast<double>(bytes));
  state.counters["bias_bytes"] = static_cast<double>(sizeof(float) * s.out);
  state.counters["group_size"] = static_cast<double>(group_size);
  state.counters["native"] = layer.native_kernel() ? 1.0 : 0.0;  // 0: the family runs a shared fallback
}

// ---- baselines: one timed function per baseline, checked against float64 first ----
using Gemm16 = std::function<void(const std::uint16_t* w, const float* x, float* y)>;

void run_weights16(benchmark::State& state, const std::string& name, const Shape& s, std::size_t batch, bool stream,
                   const std::vector<std::uint16_t>& w, const Gemm16& gemm, RefInputs ref, double tolerance) {
  ShapeData& d = shape_data(s);
  std::vector<float> y(batch * s.out);
  const bool ok = checked(state, name, [&] {
    std::fill(y.begin(), y.end(), std::nanf(""));
    gemm(w.data(), d.x.data(), y.data());
    return check_against_reference(d, ref, y.data(), batch, tolerance);
  });
  if (!ok) return;
  const double bytes = static_cast<double>(w.size() * sizeof(std::uint16_t));
  if (!stream) {
    for (auto _ : state) {
      gemm(w.data(), d.x.data(), y.data());
      benchmark::ClobberMemory();
    }
  } else {
    using Copy = std::vector<std::uint16_t>;
    std::vector<Copy>& copies = harness::cold_set<Copy>(name, static_cast<std::size_t>(bytes), [&] { return w; });
    std::size_t i = 0;
    for (auto _ : state) {
      gemm(copies[i].data(), d.x.data(), y.data());
      benchmark::ClobberMemory();
      i = i + 1 == copies.size() ? 0 : i + 1;
    }
  }
  set_counters(state, s, batch, bytes);
}

void bm_fp16(benchmark::State& state, const std::string& name, Shape s, std::size_t batch, bool stream) {
#if BENCH_X86
  if (!cpu_has_avx512()) {
    state.SkipWithError("the FP16 baseline kernel needs AVX-512 F/BW/VL + F16C, which this CPU lacks");
    return;
  }
  ShapeData& d = shape_data(s);
  run_weights16(
      state, name, s, batch, stream, d.fp16_weights(),
      [&](const std::uint16_t* w, const float* x, float* y) { fp16::gemm_avx512(w, s.out, s.in, x, batch, y); },
      RefInputs::fp16_weights, gamma_bound(s.in, 0x1.0p-24));
#else
  state.SkipWithError("x86 only");
  (void)name, (void)s, (void)batch, (void)stream;
#endif
}

void bm_bf16(benchmark::State& state, const std::string& name, Shape s, std::size_t batch, bool stream) {
#if BENCH_X86
  if (!cpu_has_avx512_bf16()) {
    state.SkipWithError("the BF16 baseline needs AVX512_BF16 (vdpbf16ps), which this CPU lacks");
    return;
  }
  ShapeData& d = shape_data(s);
  std::vector<std::uint16_t> xb(batch * bf16::padded(s.in));
  run_weights16(
      state, name, s, batch, stream, d.bf16_weights(),
      [&](const std::uint16_t* w, const float* x, float* y) { bf16::gemm(w, s.out, s.in, x, batch, y, xb.data()); },
      RefInputs::bf16_both, gamma_bound(s.in, 0x1.0p-24));
#else
  state.SkipWithError("x86 only");
  (void)name, (void)s, (void)batch, (void)stream;
#endif
}

// Eigen::half rounds every multiply-add to half, so the worst-case bound (n * 2^-11) exceeds 1 for these sizes; the
// check uses a fixed normalized tolerance that catches wrong wiring (wrong transposition or rows), not precision.
constexpr double eigen_half_tolerance = 0.05;

void bm_half_eigen(benchmark::State& state, const std::string& name, Shape s, std::size_t batch) {
  ShapeData& d = shape_data(s);
  std::vector<std::uint16_t> xh(batch * s.in), yh(batch * s.out);
  run_weights16(
      state, name, s, batch, false, d.fp16_weights(),
      [&](const std::uint16_t* w, const float* x, float* y) {
        eigen::half_gemm(w, s.out, s.in, x, batch, y, xh.data(), yh.data());
      },
      RefInputs::half_both, eigen_half_tolerance);
}

using GemmF = void (*)(const float* w, std::size_t out, std::size_t in, const float* x, std::size_t batch, float* y);

void bm_fp32(benchmark::State& state, const std::string& name, Shape s, std::size_t batch, bool stream, GemmF gemm) {
  ShapeData& d = shape_data(s);
  std::vector<float> y(batch * s.out);
  const bool ok = checked(state, name, [&] {
    std::fill(y.begin(), y.end(), std::nanf(""));
    gemm(d.w.data(), s.out, s.in, d.x.data(), batch, y.data());
    return check_against_reference(d, RefInputs::fp32, y.data(), batch, gamma_bound(s.in, 0x1.0p-24));
  });
  if (!ok) return;
  const double bytes = static_cast<double>(d.w.size() * sizeof(float));
  if (!stream) {
    for (auto _ : state) {
      gemm(d.w.data(), s.out, s.in, d.x.data(), batch, y.data());
      benchmark::ClobberMemory();
    }
  } else {
    using Copy = std::vector<float>;
    std::vector<Copy>& copies = harness::cold_set<Copy>(name, static_cast<std::size_t>(bytes), [&] { return d.w; });
    std::size_t i = 0;
    for (auto _ : state) {
      gemm(copies[i].data(), s.out, s.in, d.x.data(), batch, y.data());
      benchmark::ClobberMemory();
      i = i + 1 == copies.size() ? 0 : i + 1;
    }
  }
  set_counters(state, s, batch, bytes);
}

// ---- the matrix ----
// Rough single-thread speeds (multiply-adds per second) used only to keep slow implementations (the scalar
// reference family, the plain loop, Eigen::half) off the large batches, where one call would take seconds.
double estimated_macs_per_s(const std::string& impl) {
  if (impl.rfind("ternary.scalar.", 0) == 0) return 0.13e9;  // measured: ~7.5 ns per weight (branchy decode)
  if (impl.rfind("binary.scalar.", 0) == 0) return 1.1e9;
  if (impl.find("_g") != std::string::npos && impl.find(".scalar.") != std::string::npos) {
    return 0.13e9;  // grouped layers on the scalar family: assumed as slow as scalar ternary
  }
  if (impl == "fp32.loop") return 1.7e9;
  if (impl == "half.eigen") return 0.14e9;
  return 30e9;
}

void apply(benchmark::internal::Benchmark* b, const Timing& t) {
  b->MinTime(t.min_time)->Repetitions(t.repetitions)->ReportAggregatesOnly(true)->Unit(benchmark::kMicrosecond);
}

void register_all(const Plan& plan) {
  const Isa best = bitlinear::detail::best_isa();
  std::vector<Isa> families;
  for (Isa isa : bitlinear::all_isas) {
    if (bitlinear::detail::isa_runnable(isa)) families.push_back(isa);
  }
  // The bandwidth table: one buffer read again and again, sizes from the caches to DRAM, and the DRAM-sized read
  // on 2 threads. (The % of roofline of each row comes from its own twin, read.<kind>/..., registered below.)
  for (std::size_t mib : {1, 4, 16, 64, 512}) {
    apply(harness::add_read("memread/" + std::to_string(mib) + "MiB", {std::size_t{mib} << 20, 1, false},
                            harness::Rate::gbps),
          plan.headline);
  }
  apply(harness::add_read("memread2/512MiB", {std::size_t{512} << 20, 2, true}, harness::Rate::gbps), plan.headline);
  const double per_call_limit = plan.quick ? 0.05 : 0.4;  // seconds; slower combinations are left out
  for (const Shape& s : all_shapes) {
    const bool small_model = std::string(s.model) == "2B4T";
    if (plan.quick && !(small_model && s.out != 640)) continue;
    for (std::size_t batch : all_batches) {
      if (plan.quick && batch != 1 && batch != 128) continue;
      const double macs = static_cast<double>(s.out * s.in * batch);
      // Issue 2's main job: bitlinear (best family) and the plain float32 loop at batch 1 and 128 on 2B4T shapes.
      const bool required = small_model && (batch == 1 || batch == 128);
      auto affordable = [&](const std::string& impl) {
        return macs / estimated_macs_per_s(impl) <= per_call_limit;
      };
      // Required rows still have a ceiling (2 s per call), or the scalar family alone would take minutes.
      auto required_ok = [&](const std::string& impl) {
        return required && macs / estimated_macs_per_s(impl) <= 2.0;
      };
      const std::string tail = "/" + shape_name(s) + "/b" + std::to_string(batch) + "/";
      auto add = [&](const std::string& impl, const std::string& mode, const Timing& timing, auto fn) {
        const std::string full = impl + tail + mode;
        apply(benchmark::RegisterBenchmark(full.c_str(), [fn, full](benchmark::State& st) { fn(st, full); }), timing);
      };
      // A bitlinear e2e row at batch 1, paired with the plain read of its bytes in the same mode (hot: one buffer;
      // stream: rotating; stream2: on 2 threads). The twin has the headline timing whichever family comes first.
      // Both get at least pair_repetitions: a ratio of two medians wants more samples than one median does.
      // kind names the twin (read.<kind>), bytes is what both read a call.
      auto add_paired = [&](const std::string& impl, const std::string& mode, const Timing& row_timing, auto fn,
                            const std::string& kind, std::size_t bytes) {
        const Timing timing{row_timing.min_time, std::max(row_timing.repetitions, pair_repetitions)};
        const Timing twin_timing{plan.headline.min_time, std::max(plan.headline.repetitions, pair_repetitions)};
        const harness::ReadSpec spec{bytes, mode == "stream2" ? std::size_t{2} : std::size_t{1}, mode != "hot",
                                     harness::twin_streams};
        const std::string read = "read." + kind + tail + mode;
        if (harness::read_bytes().count(read) == 0) apply(harness::add_read(read, spec, harness::Rate::gbps), twin_timing);
        const std::string full = impl + tail + mode;
        harness::add_pair(
            full, [fn, full](benchmark::State& st) { fn(st, full); }, read, spec, harness::Rate::gbps,
            [&](benchmark::internal::Benchmark* b) { apply(b, timing); });
      };
      for (Isa isa : families) {
        const std::string fam(bitlinear::isa_name(isa));
        const bool headline = isa == best;
        for (int kind = 0; kind < 2; ++kind) {
          const std::string k = kind == 0 ? "ternary." : "binary.";
          const std::string e2e = k + fam + ".e2e", kernel = k + fam + ".kernel";
          const std::string twin = kind == 0 ? "ternary" : "binary";
          const std::size_t bytes = (kind == 0 ? bitlinear::packed_size<bitlinear::Ternary>(s.out, s.in)
                                               : bitlinear::packed_size<bitlinear::Binary>(s.out, s.in)) +
                                    sizeof(float) * (s.out + 1);
          // The best family is the headline: it runs everywhere unless one call would exceed 2 s (the scalar family,
          // while it is the only one); the others only where affordable.
          const bool e2e_ok = affordable(e2e) || (headline && macs / estimated_macs_per_s(e2e) <= 2.0 &&
                                                  (required || !plan.quick));
          if (!e2e_ok) continue;
          const Timing& t = headline ? plan.headline : plan.secondary;
          // Runs whose single call exceeds min_time are repeated fewer times (their spread is small anyway).
          const Timing slow{t.min_time, macs / estimated_macs_per_s(e2e) > 1.0 ? 1 : t.repetitions};
          auto bm = [=](bool kernel_only, bool stream, std::size_t threads) {
            return [=](benchmark::State& st, const std::string&) {
              if (kind == 0) bm_bitlinear<bitlinear::Ternary>(st, s, batch, isa, kernel_only, stream, threads);
              else bm_bitlinear<bitlinear::Binary>(st, s, batch, isa, kernel_only, stream, threads);
            };
          };
          if (batch == 1) add_paired(e2e, "hot", slow, bm(false, false, 1), twin, bytes);
          else add(e2e, "hot", slow, bm(false, false, 1));
          if (affordable(kernel) || headline) add(kernel, "hot", slow, bm(true, false, 1));
          if (batch == 1) add_paired(e2e, "stream", slow, bm(false, true, 1), twin, bytes);
          if (batch == 1 && headline) add_paired(e2e, "stream2", slow, bm(false, true, 2), twin, bytes);
        }
      }
      // The group-scaled layers, group 128, under the family Isa::automatic picks (no per-family matrix): end to
      // end, on the batches the headline ternary row runs; at batch 1 hot and stream, each with its read twin.
      const std::string auto_family(bitlinear::active_isa());
      for (int g = 0; g < 3; ++g) {
        const std::string kind = std::string(g == 0 ? "ternary" : g == 1 ? "compact" : "binary") + "_g" +
                                 std::to_string(group_size);
        const std::string e2e = kind + "." + auto_family + ".e2e";
        const double call_seconds = macs / estimated_macs_per_s(e2e);
        if (!(affordable(e2e) || (call_seconds <= 2.0 && (required || !plan.quick)))) continue;
        const Timing slow{plan.headline.min_time, call_seconds > 1.0 ? 1 : plan.headline.repetitions};
        const std::size_t bytes = g == 0   ? grouped_bytes<bitlinear::Ternary>(s)
                                  : g == 1 ? grouped_bytes<bitlinear::TernaryCompact>(s)
                                           : grouped_bytes<bitlinear::Binary>(s);
        auto bm = [=](bool stream) {
          return [=](benchmark::State& st, const std::string&) {
            if (g == 0) bm_grouped<bitlinear::Ternary>(st, s, batch, stream);
            else if (g == 1) bm_grouped<bitlinear::TernaryCompact>(st, s, batch, stream);
            else bm_grouped<bitlinear::Binary>(st, s, batch, stream);
          };
        };
        if (batch == 1) {
          add_paired(e2e, "hot", slow, bm(false), kind, bytes);
          add_paired(e2e, "stream", slow, bm(true), kind, bytes);
        } else {
          add(e2e, "hot", slow, bm(false));
        }
      }
      add("fp16.f16c_fma", "hot", plan.headline, [=](benchmark::State& st, const std::string& name) { bm_fp16(st, name, s, batch, false); });
      if (batch == 1) add("fp16.f16c_fma", "stream", plan.headline, [=](benchmark::State& st, const std::string& name) { bm_fp16(st, name, s, batch, true); });
      if (cpu_has_avx512_bf16()) {
        add("bf16.avx512bf16", "hot", plan.headline, [=](benchmark::State& st, const std::string& name) { bm_bf16(st, name, s, batch, false); });
        if (batch == 1) add("bf16.avx512bf16", "stream", plan.headline, [=](benchmark::State& st, const std::string& name) { bm_bf16(st, name, s, batch, true); });
      }
      add("fp32.eigen", "hot", plan.headline,
          [=](benchmark::State& st, const std::string& name) { bm_fp32(st, name, s, batch, false, eigen::fp32_gemm); });
      if (batch == 1) {
        add("fp32.eigen", "stream", plan.headline,
            [=](benchmark::State& st, const std::string& name) { bm_fp32(st, name, s, batch, true, eigen::fp32_gemm); });
      }
      // (--quick keeps the float loop's batch-128 row on 2560x2560 only: it takes seconds per call.)
      const bool loop_quick_ok = !plan.quick || batch == 1 || s.out == s.in;
      if ((affordable("fp32.loop") || required_ok("fp32.loop")) && loop_quick_ok) {
        const Timing t{plan.secondary.min_time, macs / estimated_macs_per_s("fp32.loop") > 1.0 ? 1 : plan.secondary.repetitions};
        add("fp32.loop", "hot", t, [=](benchmark::State& st, const std::string& name) { bm_fp32(st, name, s, batch, false, loop::fp32_gemm); });
      }
      if (affordable("half.eigen")) {
        add("half.eigen", "hot", plan.secondary, [=](benchmark::State& st, const std::string& name) { bm_half_eigen(st, name, s, batch); });
      }
    }
  }
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  bench::Plan plan;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      plan.quick = true;
      plan.headline = {0.02, 5};
      plan.secondary = {0.01, 3};
    } else {
      args.push_back(argv[i]);
    }
  }
  benchmark::AddCustomContext("bitlinear_best_family", std::string(bitlinear::isa_name(bitlinear::detail::best_isa())));
  benchmark::AddCustomContext("bitlinear_families", bitlinear::detail::runnable_isa_list());
  benchmark::AddCustomContext("eigen_simd", bench::eigen::simd_description());
  benchmark::AddCustomContext("eigen_half_f16c", bench::eigen::half_uses_f16c() ? "yes" : "no");
  benchmark::AddCustomContext("cpu_avx512_bf16", bench::cpu_has_avx512_bf16() ? "yes" : "no");
  benchmark::AddCustomContext("plan", plan.quick ? "quick" : "full");
  bench::register_all(plan);
  return bench::harness::run(static_cast<int>(args.size()), args.data());
}
