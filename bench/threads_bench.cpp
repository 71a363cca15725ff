// Threads on equal and unequal cores: forward() on a ThreadPool of 1 and 2 threads against a plain read of the same
// bytes, in one run, plus the decode split with one core made slower on purpose. Ternary 6912x2560 and 2560x6912.
//
//   forward/<shape>/b1/t<T>     forward() with its workspace, batch 1, on a ThreadPool of T threads (quantization
//                               included), rotating over >= 256 MiB of copies of the layer (weights from DRAM)
//   read/<shape>/t<T>           a plain 64-byte-load read of one layer's weight bytes per call, rotating over
//                               >= 256 MiB; 2 threads read one half each (bench/baselines/memread.hpp)
//   forward/<shape>/b128/t<T>   forward() at batch 128 on one layer (compute bound)
//   chunks1/<shape>/c<N>        1 thread, batch 1, forward_quantized() once per chunk of N equal RowChunks: what
//                               cutting a layer into chunks costs one core (c1 is one call for the whole layer)
//   chunks1/<shape>/decode      the same over the chunks of forward()'s decode split for 2 threads
//   slowed/<shape>/<mode>       batch 1, the decode split of forward() on a ThreadPool (the same chunks, claimed
//                               from the pool's counter in the same way; quantization once, outside the loop)
//                               with one core made 30% slower:
//     fast1    1 thread, no slowdown: the fast core's own rate
//     slow1    1 thread, every chunk slowed: the slow core's own rate
//     dynamic2 2 threads, the chunks the pool worker computes slowed: what forward() does on unequal cores
//     static2  2 threads, same slowdown, one equal part per thread (the split forward() used before): for contrast
//     static2-equal  2 threads, no slowdown, one equal part per thread: the first split forward() used
//     dynamic2-eqchunks  as dynamic2, over equal chunks (the second split forward() used, before tapering)
//     plain2-eqchunks    2 threads, no slowdown, the same equal chunks claimed dynamically
//
// How a core is made slower: after computing a chunk in t seconds of its own CPU time, the slowed thread
// busy-waits (no memory traffic) until it has used t * (1 / 0.7 - 1) more, so each of its chunks costs t / 0.7:
// a core running at 70% of its speed. Thread CPU time (CLOCK_THREAD_CPUTIME_ID), not wall time, so that time the
// OS gives to other processes is not amplified into extra slowdown. The wait is deterministic in proportion to
// the work, unlike a competing process (which the OS scheduler would time-slice in milliseconds, coarser than
// one ~150 µs layer). Which thread is slowed: the pool worker (the thread that is not the caller), whichever
// chunks it claims.
//
// At the end: per shape, forward / read at 1 and 2 threads (target: 2 threads <= 1.1x), the 2-thread throughput on
// unequal cores against the sum of the two cores' own 1-thread rates (target >= 90%), and the 2-thread speedup at
// batch 128 (target >= 1.85x). Medians when repetitions are aggregated. Run with random interleaving so that every
// ratio compares runs spread over the same minutes:
//
//   ./build/bench/threads_bench --benchmark_repetitions=7 --benchmark_enable_random_interleaving=true
//       --benchmark_report_aggregates_only=true          (one command line)
#include <benchmark/benchmark.h>

#include <time.h>

#include <bitlinear/bitlinear.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "baselines/memread.hpp"

namespace {

namespace bl = bitlinear;

constexpr std::size_t kStreamBytes = std::size_t{256} << 20;
constexpr double kSlowSpeed = 0.7;  // the slowed core runs at this fraction of its speed

struct Shape {
  std::size_t out, in;
};
const Shape kShapes[] = {{6912, 2560}, {2560, 6912}};

std::string shape_name(const Shape& s) { return std::to_string(s.out) + "x" + std::to_string(s.in); }

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = normal(rng);
  return v;
}

// Copies of one layer filling >= 256 MiB, per shape, kept for the whole run (random interleaving switches shapes).
const std::vector<bl::TernaryLinear>& layer_copies(const Shape& s) {
  static std::map<std::string, std::unique_ptr<std::vector<bl::TernaryLinear>>> sets;
  auto& set = sets[shape_name(s)];
  if (!set) {
    const auto w = random_floats(s.out * s.in, 1);
    const auto first = bl::TernaryLinear::from_float(w.data(), s.out, s.in);
    const std::size_t count = kStreamBytes / first.packed_weights_size() + 2;
    set = std::make_unique<std::vector<bl::TernaryLinear>>(count, first);  // distinct memory, same values
  }
  return *set;
}

// One 256 MiB buffer for every plain read (each shape walks it in steps of its own layer's bytes).
const std::uint8_t* read_buffer() {
  static std::uint8_t* data = [] {
    auto* p = static_cast<std::uint8_t*>(std::aligned_alloc(64, kStreamBytes));
    for (std::size_t i = 0; i < kStreamBytes; ++i) p[i] = static_cast<std::uint8_t>(i);
    return p;
  }();
  return data;
}

bl::ThreadPool& pool_of(std::size_t threads) {
  static std::map<std::size_t, std::unique_ptr<bl::ThreadPool>> pools;
  auto& pool = pools[threads];
  if (!pool) pool = std::make_unique<bl::ThreadPool>(threads);
  return *pool;
}

void set_bytes(benchmark::State& state, double bytes) {
  state.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}

void bm_forward_stream(benchmark::State& state, Shape s, std::size_t threads) {
  const auto& layers = layer_copies(s);
  const auto x = random_floats(s.in, 2);
  std::vector<float> y(s.out);
  std::vector<unsigned char> workspace(layers[0].workspace_size(1));
  bl::ThreadPool& pool = pool_of(threads);
  std::size_t next = 0;
  for (auto _ : state) {
    layers[next].forward(x.data(), 1, s.in, y.data(), s.out, workspace.data(), workspace.size(), pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = next + 1 == layers.size() ? 0 : next + 1;
  }
  set_bytes(state, static_cast<double>(layers[0].packed_weights_size()));
  state.counters["chunks"] = static_cast<double>(bl::RowChunks(layers[0], threads).chunks());
}

void bm_read(benchmark::State& state, Shape s, std::size_t threads) {
  const std::size_t bytes = layer_copies(s)[0].packed_weights_size();
  const std::size_t step = (bytes + 511) / 512 * 512;  // whole 256-byte steps in each half
  const std::size_t count = kStreamBytes / step;
  const std::uint8_t* buffer = read_buffer();
  bl::ThreadPool& pool = pool_of(threads);
  const std::size_t part = step / threads;
  std::size_t next = 0;
  std::uint64_t sums[2] = {0, 0};
  for (auto _ : state) {
    const std::uint8_t* layer = buffer + next * step;
    pool.parallel_for(0, threads, 1, [&](std::size_t t, std::size_t) {
      sums[t] += bench::memread::read(layer + t * part, part);
    });
    benchmark::DoNotOptimize(sums);
    next = next + 1 == count ? 0 : next + 1;
  }
  set_bytes(state, static_cast<double>(bytes));
}

void bm_forward_batch(benchmark::State& state, Shape s, std::size_t batch, std::size_t threads) {
  const auto& layer = layer_copies(s)[0];
  const auto x = random_floats(batch * s.in, 3);
  std::vector<float> y(batch * s.out);
  std::vector<unsigned char> workspace(layer.workspace_size(batch));
  bl::ThreadPool& pool = pool_of(threads);
  for (auto _ : state) {
    layer.forward(x.data(), batch, s.in, y.data(), s.out, workspace.data(), workspace.size(), pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GOPS"] = benchmark::Counter(2.0 * batch * s.out * s.in, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}

// CPU time of the calling thread (it does not advance while the OS runs something else on the core).
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Busy-waits (no memory traffic) until the calling thread has used `seconds` more CPU time.
void spin_cpu(double seconds) {
  const double until = thread_cpu_seconds() + seconds;
  while (thread_cpu_seconds() < until) {
  }
}

enum class Slowed { fast1, slow1, dynamic2, static2, static2_equal, dynamic2_eqchunks, plain2_eqchunks };
const char* slowed_name(Slowed m) {
  switch (m) {
    case Slowed::fast1: return "fast1";
    case Slowed::slow1: return "slow1";
    case Slowed::dynamic2: return "dynamic2";
    case Slowed::static2: return "static2";
    case Slowed::dynamic2_eqchunks: return "dynamic2-eqchunks";
    case Slowed::plain2_eqchunks: return "plain2-eqchunks";
    default: return "static2-equal";
  }
}

// The decode split before it was tapered: equal chunks, as many as keep each >= 256 KiB of weights, at most 8 per
// thread, rounded down to a multiple of the thread count, at least one per thread (14 and 12 chunks for the
// two shapes on 2 threads).
std::size_t equal_decode_chunks(std::size_t rows, std::size_t row_bytes, std::size_t threads) {
  const std::size_t blocks = (rows + 63) / 64;
  const std::size_t min_blocks = ((std::size_t{256} << 10) + row_bytes * 64 - 1) / (row_bytes * 64);
  std::size_t chunks = blocks / min_blocks;
  if (chunks > 8 * threads) chunks = 8 * threads;
  chunks = chunks / threads * threads;
  return chunks < threads ? threads : chunks;
}

void bm_slowed(benchmark::State& state, Shape s, Slowed mode) {
  const auto& layers = layer_copies(s);
  const bool halves = mode == Slowed::static2 || mode == Slowed::static2_equal;
  const bool eqchunks = mode == Slowed::dynamic2_eqchunks || mode == Slowed::plain2_eqchunks;
  const std::size_t threads = mode == Slowed::fast1 || mode == Slowed::slow1 ? 1 : 2;
  bl::ThreadPool& pool = pool_of(threads);
  const auto x = random_floats(s.in, 2);
  bl::QuantizedActivations acts;
  layers[0].quantize(x.data(), 1, s.in, acts);
  std::vector<float> y(s.out);
  // forward()'s decode split for 2 threads (fast1 / slow1 use it too: the same chunks on one thread), halves, or
  // the equal chunks of the split before tapering.
  const std::size_t row_bytes = bl::TernaryLinear::format_type::packed_row_bytes(s.in);
  const bl::RowChunks chunks = halves     ? bl::RowChunks(s.out, 2)
                               : eqchunks ? bl::RowChunks(s.out, equal_decode_chunks(s.out, row_bytes, 2))
                                          : bl::RowChunks(layers[0], 2);
  const std::thread::id caller = std::this_thread::get_id();
  const double extra = 1.0 / kSlowSpeed - 1.0;
  std::size_t next = 0;
  for (auto _ : state) {
    const bl::TernaryLinear& layer = layers[next];
    pool.parallel_for(0, chunks.chunks(), 1, [&](std::size_t i, std::size_t) {
      const bl::RowRange rows = chunks.chunk(i);
      const double start = thread_cpu_seconds();
      layer.forward_quantized(acts.view(), rows.begin, rows.end, y.data(), s.out);
      const bool slowed = mode == Slowed::slow1 || (threads == 2 && mode != Slowed::static2_equal &&
                                                    mode != Slowed::plain2_eqchunks &&
                                                    std::this_thread::get_id() != caller);
      if (slowed) spin_cpu((thread_cpu_seconds() - start) * extra);
    });
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = next + 1 == layers.size() ? 0 : next + 1;
  }
  set_bytes(state, static_cast<double>(layers[0].packed_weights_size()));
  state.counters["chunks"] = static_cast<double>(chunks.chunks());
}

// One thread, no pool: forward_quantized() over the layer's rows cut into `chunks` runs of whole 64-row blocks
// (RowChunks), one call per chunk, rotating over the copies. chunks1/<shape>/c1 is one call for the layer; the
// others show what starting a chunk costs a single core (each start begins new streams and prefetches).
// chunk_count 0: the chunks of forward()'s decode split for 2 threads.
void bm_chunks1(benchmark::State& state, Shape s, std::size_t chunk_count) {
  const auto& layers = layer_copies(s);
  const auto x = random_floats(s.in, 2);
  bl::QuantizedActivations acts;
  layers[0].quantize(x.data(), 1, s.in, acts);
  std::vector<float> y(s.out);
  const bl::RowChunks chunks = chunk_count == 0 ? bl::RowChunks(layers[0], 2) : bl::RowChunks(s.out, chunk_count);
  std::size_t next = 0;
  for (auto _ : state) {
    const bl::TernaryLinear& layer = layers[next];
    for (std::size_t i = 0; i < chunks.chunks(); ++i) {
      const bl::RowRange rows = chunks.chunk(i);
      layer.forward_quantized(acts.view(), rows.begin, rows.end, y.data(), s.out);
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = next + 1 == layers.size() ? 0 : next + 1;
  }
  set_bytes(state, static_cast<double>(layers[0].packed_weights_size()));
  state.counters["chunks"] = static_cast<double>(chunks.chunks());
}

// Medians (or the last repetition's time) by name, for the summary.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const bool aggregate = run.run_type == Run::RT_Aggregate;
      if (aggregate && run.aggregate_name != "median") continue;
      const std::string name = run.run_name.function_name;  // without the /real_time suffix
      if (aggregate || medians_.count(name) == 0) times_[name] = run.GetAdjustedRealTime();
      if (aggregate) medians_[name] = true;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  double time(const std::string& name) const {
    const auto it = times_.find(name);
    return it == times_.end() ? 0.0 : it->second;
  }
  void print() const {
    const auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    std::printf(
        "\nEqual cores, batch 1 (µs per layer, medians; ratios within this run; halves t2: one equal part per "
        "thread,\nequal t2: the equal chunks of the split before tapering, both without quantization):\n");
    std::printf("%-10s %9s %9s %7s | %9s %9s %7s | %7s | %9s %7s | %9s %7s\n", "shape", "fwd t1", "read t1", "f1/r1",
                "fwd t2", "read t2", "f2/r2", "t1/t2", "halves t2", "h2/r2", "equal t2", "e2/r2");
    for (const Shape& s : kShapes) {
      const std::string n = shape_name(s);
      const double f1 = time("forward/" + n + "/b1/t1"), f2 = time("forward/" + n + "/b1/t2");
      const double r1 = time("read/" + n + "/t1"), r2 = time("read/" + n + "/t2");
      const double halves2 = time("slowed/" + n + "/static2-equal");
      const double equal2 = time("slowed/" + n + "/plain2-eqchunks");
      std::printf("%-10s %9.1f %9.1f %7.2f | %9.1f %9.1f %7.2f | %7.2f | %9.1f %7.2f | %9.1f %7.2f\n", n.c_str(), f1,
                  r1, ratio(f1, r1), f2, r2, ratio(f2, r2), ratio(f1, f2), halves2, ratio(halves2, r2), equal2,
                  ratio(equal2, r2));
    }
    std::printf("\nOne core at %.0f%% speed, batch 1 (µs per layer; rates in layers per ms):\n", kSlowSpeed * 100);
    std::printf("%-10s %8s %8s %9s | %9s %7s | %9s %7s | %9s %7s\n", "shape", "fast1", "slow1", "sum rate",
                "dynamic2", "of sum", "eqchunks2", "of sum", "static2", "of sum");
    for (const Shape& s : kShapes) {
      const std::string n = shape_name(s);
      const double fast = time("slowed/" + n + "/fast1"), slow = time("slowed/" + n + "/slow1");
      const double dyn = time("slowed/" + n + "/dynamic2"), stat = time("slowed/" + n + "/static2");
      const double eq = time("slowed/" + n + "/dynamic2-eqchunks");
      const double sum = ratio(1e3, fast) + ratio(1e3, slow);
      const auto of_sum = [&](double t) { return 100 * ratio(ratio(1e3, t), sum); };
      std::printf("%-10s %8.1f %8.1f %9.2f | %9.1f %6.1f%% | %9.1f %6.1f%% | %9.1f %6.1f%%\n", n.c_str(), fast, slow,
                  sum, dyn, of_sum(dyn), eq, of_sum(eq), stat, of_sum(stat));
    }
    std::printf("\nOne core, the layer in N chunks (µs per layer):\n%-10s %9s %9s %9s %9s\n", "shape", "c1",
                "eqchunks", "decode", "chunks");
    for (const Shape& s : kShapes) {
      const std::string n = shape_name(s);
      const std::size_t eq = equal_decode_chunks(s.out, bl::TernaryLinear::format_type::packed_row_bytes(s.in), 2);
      std::printf("%-10s %9.1f %9.1f %9.1f %4zu/%-4zu\n", n.c_str(), time("chunks1/" + n + "/c1"),
                  time("chunks1/" + n + "/c" + std::to_string(eq)), time("chunks1/" + n + "/decode"), eq,
                  bl::decode_chunk_count(s.out, bl::TernaryLinear::format_type::packed_row_bytes(s.in), 2));
    }
    std::printf("\nBatch 128 (ms per call):\n%-10s %9s %9s %7s\n", "shape", "t1", "t2", "t1/t2");
    for (const Shape& s : kShapes) {
      const std::string n = shape_name(s);
      const double t1 = time("forward/" + n + "/b128/t1"), t2 = time("forward/" + n + "/b128/t2");
      std::printf("%-10s %9.2f %9.2f %7.2f\n", n.c_str(), t1 / 1e3, t2 / 1e3, ratio(t1, t2));
    }
  }

 private:
  std::map<std::string, double> times_;
  std::map<std::string, bool> medians_;
};

void register_benchmarks() {
  for (const Shape& s : kShapes) {
    const std::string n = shape_name(s);
    for (std::size_t t : {1u, 2u}) {
      const std::string tn = "/t" + std::to_string(t);
      benchmark::RegisterBenchmark(("forward/" + n + "/b1" + tn).c_str(), bm_forward_stream, s, t)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("read/" + n + tn).c_str(), bm_read, s, t)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("forward/" + n + "/b128" + tn).c_str(), bm_forward_batch, s, std::size_t{128}, t)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
    const std::size_t eq = equal_decode_chunks(s.out, bl::TernaryLinear::format_type::packed_row_bytes(s.in), 2);
    for (std::size_t c : {std::size_t{1}, std::size_t{4}, eq, std::size_t{32}, std::size_t{0}}) {
      const std::string cn = c == 0 ? "decode" : "c" + std::to_string(c);
      benchmark::RegisterBenchmark(("chunks1/" + n + "/" + cn).c_str(), bm_chunks1, s, c)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
    for (Slowed m : {Slowed::fast1, Slowed::slow1, Slowed::dynamic2, Slowed::static2, Slowed::static2_equal,
                     Slowed::dynamic2_eqchunks, Slowed::plain2_eqchunks}) {
      benchmark::RegisterBenchmark(("slowed/" + n + "/" + slowed_name(m)).c_str(), bm_slowed, s, m)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("bitlinear_isa", std::string(bl::active_isa()));
  register_benchmarks();
  SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print();
  benchmark::Shutdown();
  return 0;
}
