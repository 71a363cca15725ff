// bench: the one harness for "stream a layer's weights from DRAM, against a plain read of the same bytes".
//
//   cold sets    copies of one layer (or weight matrix) adding up to >= cold_bytes, used in turn, so that every
//                call reads its weights from DRAM and not from the last-level cache (cold_set, Cursor);
//   plain read   the same bytes read with the widest loads the CPU has (baselines/memread.hpp), split over the
//                same number of pool threads as the kernel, rotating over >= cold_bytes too (or, hot, one buffer
//                read again and again): the roofline a memory-bound kernel is judged by (add_read). Each thread
//                reads its part in one linear pass, or as several streams side by side like the x86 GEMVs
//                (ReadSpec::streams): one pass is the older figure, which a 4-stream GEMV beats on a loaded
//                machine, so the twins that define a "% of roofline" read 4 streams;
//   pairs        a kernel benchmark and its plain-read twin registered together with the same settings
//                (add_pair). run() turns random interleaving on, so the repetitions of both are shuffled into one
//                repetition set and a busy machine slows both alike; its reporters add the counter
//                vs_read = kernel bytes/s / twin bytes/s (1.0: at the roofline) to the kernel's runs, median
//                against median (mean against mean, repetition against repetition);
//   run()        Initialize, the reporters (console or JSON on stdout; --benchmark_out as JSON), a summary.
#pragma once

#include <benchmark/benchmark.h>

#include <bitlinear/bitlinear.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "baselines/memread.hpp"

namespace bench::harness {

// Distinct memory a cold rotation covers: far above any last-level cache the benchmarks run on (32 MiB per
// Zen 5 CCD), so each call finds none of its bytes cached.
inline constexpr std::size_t cold_bytes = std::size_t{256} << 20;
// Cold sets kept at once. Interleaved benchmarks switch sets all the time; the least recently used is dropped.
inline constexpr std::size_t cold_budget = std::size_t{1} << 30;

// One pool per thread count, alive for the whole program (workers are persistent, as in an engine).
inline bitlinear::ThreadPool& pool_of(std::size_t threads) {
  static std::map<std::size_t, std::unique_ptr<bitlinear::ThreadPool>> pools;
  auto& pool = pools[threads];
  if (!pool) pool = std::make_unique<bitlinear::ThreadPool>(threads);
  return *pool;
}

// ---- cold sets ----

// Copies of `bytes_each` that add up to >= cold_bytes; at least 2, so no call finds the previous call's data.
inline std::size_t cold_count(std::size_t bytes_each) {
  return std::max<std::size_t>(2, (cold_bytes + bytes_each - 1) / std::max<std::size_t>(bytes_each, 1));
}

// 0, 1, ..., n - 1, 0, ...: which copy the next call uses.
class Cursor {
 public:
  explicit Cursor(std::size_t n) : n_(n) {}
  std::size_t next() {
    const std::size_t i = i_;
    i_ = i_ + 1 == n_ ? 0 : i_ + 1;
    return i;
  }

 private:
  std::size_t n_, i_ = 0;
};

// A 64-byte aligned copy of some bytes (std::vector's storage is only 16-byte aligned).
class Bytes {
 public:
  explicit Bytes(const std::vector<std::uint8_t>& from)
      : size_(from.size()), data_(static_cast<std::uint8_t*>(std::aligned_alloc(64, (size_ + 63) / 64 * 64))) {
    std::copy(from.begin(), from.end(), data_.get());
  }
  const std::uint8_t* data() const { return data_.get(); }
  std::size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(std::uint8_t* p) const { std::free(p); }
  };
  std::size_t size_;
  std::unique_ptr<std::uint8_t, Free> data_;
};

namespace detail {
struct ColdEntry {
  std::string key;
  std::size_t bytes;
  std::shared_ptr<void> copies;
};
inline std::list<ColdEntry>& cold_entries() {  // most recently used first
  static std::list<ColdEntry> entries;
  return entries;
}
}  // namespace detail

// The cold set `key`: cold_count(bytes_each) copies, each made by make() (a T of about bytes_each bytes).
// The reference stays valid until the next cold_set() call.
template <class T, class Make>
std::vector<T>& cold_set(const std::string& key, std::size_t bytes_each, Make&& make) {
  auto& entries = detail::cold_entries();
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (it->key == key) {
      entries.splice(entries.begin(), entries, it);
      return *static_cast<std::vector<T>*>(entries.front().copies.get());
    }
  }
  const std::size_t n = cold_count(bytes_each);
  std::size_t total = n * bytes_each;
  for (const auto& e : entries) total += e.bytes;
  while (!entries.empty() && total > cold_budget) {  // free before allocating: the peak stays near the budget
    total -= entries.back().bytes;
    entries.pop_back();
  }
  auto copies = std::make_shared<std::vector<T>>();
  copies->reserve(n);
  for (std::size_t i = 0; i < n; ++i) copies->push_back(make());
  entries.push_front({key, n * bytes_each, copies});
  return *copies;
}

// Normal(0, 1) floats from std::mt19937(seed): the weights and activations of decode_bench and compact_bench.
inline std::vector<float> normal_floats(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = normal(rng);
  return v;
}

// Random canonical codes of one [out, in] layer of Format, packed: uniform over {-1, 0, 1} (the ternary formats)
// or {-1, 1} (Binary), from std::mt19937(seed). The kernel microbenchmarks call kernels on them directly.
template <class Format>
std::vector<std::uint8_t> random_packed_codes(std::size_t out, std::size_t in, std::uint32_t seed) {
  constexpr bool binary = std::is_same_v<Format, bitlinear::Binary>;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(0, binary ? 1 : 2);
  std::vector<std::int8_t> codes(out * in);
  for (auto& c : codes) c = static_cast<std::int8_t>(binary ? 2 * dist(rng) - 1 : dist(rng) - 1);
  std::vector<std::uint8_t> packed(bitlinear::packed_size<Format>(out, in));
  bitlinear::pack_codes<Format>(codes.data(), out, in, packed.data());
  return packed;
}

// Layer::from_float of normal_floats(out * in, 1), built once per layer type and shape, and kept (used hot).
template <class Layer>
const Layer& normal_layer(std::size_t out, std::size_t in) {
  static std::map<std::pair<std::size_t, std::size_t>, std::unique_ptr<Layer>> layers;
  auto& layer = layers[{out, in}];
  if (!layer) {
    const auto w = normal_floats(out * in, 1);
    layer = std::make_unique<Layer>(Layer::from_float(w.data(), out, in));
  }
  return *layer;
}

// The cold set of normal_layer<Layer>(out, in): distinct memory, same values.
template <class Layer>
const std::vector<Layer>& normal_layer_copies(std::size_t out, std::size_t in) {
  const Layer& first = normal_layer<Layer>(out, in);
  return cold_set<Layer>(std::string("normal/") + Layer::format_type::name + "/" + std::to_string(out) + "x" +
                             std::to_string(in),
                         first.packed_weights_size(), [&] { return first; });
}

// ---- the plain read ----

// The memory every plain read reads: one 64-byte aligned buffer, written once so that its pages are mapped,
// grown when a read needs more. Read only afterwards, so all read benchmarks (and BackgroundReader) share it.
inline const std::uint8_t* arena(std::size_t bytes) {
  struct Free {
    void operator()(std::uint8_t* p) const { std::free(p); }
  };
  static std::unique_ptr<std::uint8_t, Free> buffer;
  static std::size_t size = 0;
  if (bytes > size) {
    buffer.reset();
    const std::size_t n = (bytes + 63) / 64 * 64;
    buffer.reset(static_cast<std::uint8_t*>(std::aligned_alloc(64, n)));
    for (std::size_t i = 0; i < n; ++i) buffer.get()[i] = static_cast<std::uint8_t>(i * 131);
    size = n;
  }
  return buffer.get();
}

// Bytes one plain read of `bytes` on `threads` threads in `streams` streams each covers: each thread's part
// rounded up to memread's step of 256 bytes per stream (at most 256 * streams - 1 bytes more per thread).
inline std::size_t read_span(std::size_t bytes, std::size_t threads, std::size_t streams = 1) {
  const std::size_t part = (bytes + threads - 1) / threads, step = 256 * streams;
  return (part + step - 1) / step * step * threads;
}

// One plain read of `threads` contiguous parts of `part` bytes at p, one per pool thread, as the pooled GEMV
// gives each thread its own rows; each part read as `streams` streams.
inline std::uint64_t plain_read(const std::uint8_t* p, std::size_t part, std::size_t threads, std::size_t streams) {
  if (threads == 1) return memread::read_streams(p, part, streams);
  constexpr std::size_t max_threads = 64;
  std::uint64_t sums[max_threads] = {};
  threads = std::min(threads, max_threads);
  pool_of(threads).parallel_for(0, threads, 1, [&](std::size_t t, std::size_t) {
    sums[t] = memread::read_streams(p + t * part, part, streams);
  });
  std::uint64_t sum = 0;
  for (std::size_t t = 0; t < threads; ++t) sum += sums[t];
  return sum;
}

// How a program reports bytes per second; each keeps the counter it had before the harness.
enum class Rate {
  gb_s,              // "GB/s" (decode_bench, compact_bench)
  gbps,              // "GBps" and "bytes" (bitlinear_bench, read by bench/summarize.py)
  bytes_per_second,  // Google Benchmark's own bytes_per_second (the micro benchmarks)
};

inline void set_rate(benchmark::State& state, double bytes, Rate rate) {
  using benchmark::Counter;
  switch (rate) {
    case Rate::gb_s:
      state.counters["GB/s"] = Counter(bytes, Counter::kIsIterationInvariantRate, Counter::kIs1000);
      break;
    case Rate::gbps:
      state.counters["bytes"] = bytes;
      state.counters["GBps"] = Counter(bytes * 1e-9, Counter::kIsIterationInvariantRate);
      break;
    case Rate::bytes_per_second:
      state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes));
      break;
  }
}

// What a plain read reads and how: `bytes` a call on `threads` pool threads, rotating over >= cold_bytes (cold)
// or the same buffer every call (hot), each thread's part in `streams` streams (1, 2 or 4).
struct ReadSpec {
  std::size_t bytes;
  std::size_t threads = 1;
  bool cold = true;
  std::size_t streams = 1;
};

// Streams of the twins that define a "% of roofline" (bitlinear_bench, compact_bench, the micro benchmarks): as
// many as the avx512 GEMV reads at batch 1, so the read is no worse placed than the kernel it judges.
inline constexpr std::size_t twin_streams = 4;

// A plain-read benchmark: read_span(bytes, threads, streams) bytes a call.
inline void read_bench(benchmark::State& state, const ReadSpec& spec, Rate rate) {
  const std::size_t threads = spec.threads, span = read_span(spec.bytes, threads, spec.streams);
  const bool cold = spec.cold;
  const std::size_t slots = cold && span < cold_bytes ? cold_count(span) : 1;  // a larger read is cold by itself
  const std::uint8_t* base = arena(slots * span);
  if (threads > 1) pool_of(threads);  // start the workers before timing
  Cursor cursor(slots);
  std::uint64_t sum = 0;
  for (auto _ : state) {
    sum += plain_read(base + cursor.next() * span, span / threads, threads, spec.streams);
    benchmark::DoNotOptimize(sum);
  }
  set_rate(state, static_cast<double>(span), rate);
}

// A plain read loop over cold_bytes of the arena on a thread of its own while it lives: another core using
// the memory bus.
class BackgroundReader {
 public:
  BackgroundReader() : buffer_(arena(cold_bytes)) {
    thread_ = std::thread([this] {
      std::uint64_t sum = 0;
      while (!stop_.load(std::memory_order_relaxed)) sum += memread::read(buffer_, cold_bytes);
      sink_ = sum;
    });
  }
  BackgroundReader(const BackgroundReader&) = delete;
  BackgroundReader& operator=(const BackgroundReader&) = delete;
  ~BackgroundReader() {
    stop_ = true;
    thread_.join();
  }

 private:
  const std::uint8_t* buffer_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  volatile std::uint64_t sink_ = 0;
};

// ---- pairs ----

struct Twin {
  std::string read;     // the plain-read benchmark's name
  double kernel_bytes;  // bytes one kernel call reads
};
inline std::map<std::string, Twin>& twins() {  // by kernel name
  static std::map<std::string, Twin> twins;
  return twins;
}
inline std::map<std::string, double>& read_bytes() {  // bytes per call, by read name
  static std::map<std::string, double> reads;
  return reads;
}

// Registers the plain read `name` (see read_bench). Multi-threaded reads are timed in real time.
inline benchmark::internal::Benchmark* add_read(const std::string& name, const ReadSpec& spec, Rate rate) {
  read_bytes()[name] = static_cast<double>(read_span(spec.bytes, spec.threads, spec.streams));
  auto* b = benchmark::RegisterBenchmark(name.c_str(),
                                         [spec, rate](benchmark::State& state) { read_bench(state, spec, rate); });
  if (spec.threads > 1) b->UseRealTime();
  return b;
}

// Registers the kernel benchmark `kernel` (fn(State&)) and, unless an earlier pair did, its twin: the plain
// read `read` of spec. configure(Benchmark*) gives both the same settings (min time, repetitions, unit), so the
// twin's repetitions are shuffled among the kernel's.
template <class Fn, class Configure>
benchmark::internal::Benchmark* add_pair(const std::string& kernel, Fn&& fn, const std::string& read,
                                         const ReadSpec& spec, Rate rate, Configure&& configure) {
  if (read_bytes().count(read) == 0) configure(add_read(read, spec, rate));
  auto* b = benchmark::RegisterBenchmark(kernel.c_str(), std::forward<Fn>(fn));
  configure(b);
  twins()[kernel] = Twin{read, static_cast<double>(spec.bytes)};
  return b;
}

// ---- running and reporting ----

// Seconds per call by benchmark name: the median over repetitions, or the last repetition without aggregates.
class Results {
 public:
  void add(const benchmark::BenchmarkReporter::Run& run) {
    if (run.error_occurred) return;
    const bool aggregate = run.run_type == benchmark::BenchmarkReporter::Run::RT_Aggregate;
    if (aggregate && run.aggregate_name != "median") return;
    const std::string& name = run.run_name.function_name;  // without the /min_time: and /real_time suffixes
    if (aggregate || medians_.count(name) == 0) seconds_[name] = seconds(run);
    if (aggregate) medians_[name] = true;
  }
  // 0 if `name` did not run.
  double seconds(const std::string& name) const {
    const auto it = seconds_.find(name);
    return it == seconds_.end() ? 0.0 : it->second;
  }
  static double seconds(const benchmark::BenchmarkReporter::Run& run) {
    return run.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(run.time_unit);
  }

 private:
  std::map<std::string, double> seconds_;
  std::map<std::string, bool> medians_;
};

// Passes runs on to `inner` (console or JSON); a paired kernel's runs wait until its twin's have come (random
// interleaving finishes them in any order) and get vs_read. Records medians in `results` (if not null).
class PairReporter : public benchmark::BenchmarkReporter {
 public:
  PairReporter(std::unique_ptr<benchmark::BenchmarkReporter> inner, Results* results)
      : inner_(std::move(inner)), results_(results) {}

  bool ReportContext(const Context& context) override {
    inner_->SetOutputStream(&GetOutputStream());  // run() sets the streams on this reporter, not the inner one
    inner_->SetErrorStream(&GetErrorStream());
    return inner_->ReportContext(context);
  }

  void ReportRuns(const std::vector<Run>& runs) override {
    if (runs.empty()) return;
    if (results_ != nullptr) {
      for (const Run& run : runs) results_->add(run);
    }
    const std::string name = runs.front().run_name.function_name;
    const auto twin = twins().find(name);
    if (twin != twins().end() && read_times_.count(twin->second.read) == 0) {
      waiting_.push_back(runs);
      return;
    }
    report(runs);
    if (read_bytes().count(name) == 0) return;
    auto& times = read_times_[name];
    for (const Run& run : runs) {
      if (!run.error_occurred) times[kind(run)] = Results::seconds(run);
    }
    std::vector<std::vector<Run>> ready, still;
    for (auto& w : waiting_) (twins()[w.front().run_name.function_name].read == name ? ready : still).push_back(w);
    waiting_ = std::move(still);
    for (const auto& w : ready) report(w);
  }

  void Finalize() override {
    for (const auto& w : waiting_) inner_->ReportRuns(w);  // twins that did not run (filtered out or failed)
    waiting_.clear();
    inner_->Finalize();
  }

 private:
  static std::string kind(const Run& run) {
    return run.run_type == Run::RT_Aggregate ? run.aggregate_name : "#" + std::to_string(run.repetition_index);
  }

  void report(const std::vector<Run>& runs) {
    const auto twin = twins().find(runs.front().run_name.function_name);
    if (twin == twins().end()) return inner_->ReportRuns(runs);
    const auto& times = read_times_[twin->second.read];
    const double read_bytes_per_call = read_bytes()[twin->second.read];
    std::vector<Run> out = runs;
    for (Run& run : out) {
      if (run.error_occurred) continue;
      const std::string k = kind(run);
      if (run.run_type == Run::RT_Aggregate && k != "median" && k != "mean") continue;  // stddev, cv: no ratio
      auto it = times.find(k);
      if (it == times.end()) it = times.find("median");
      if (it == times.end()) it = times.find("#0");
      if (it == times.end()) continue;
      const double t = Results::seconds(run);
      if (t > 0) run.counters["vs_read"] = (twin->second.kernel_bytes / t) / (read_bytes_per_call / it->second);
    }
    inner_->ReportRuns(out);
  }

  std::unique_ptr<benchmark::BenchmarkReporter> inner_;
  Results* results_;
  std::map<std::string, std::map<std::string, double>> read_times_;  // read name -> kind -> seconds
  std::vector<std::vector<Run>> waiting_;
};

// "model name (family F, model M)" of the first CPU in /proc/cpuinfo: a VM may name only the brand ("AMD EPYC"),
// the family and model still tell the generation (26 = Zen 5).
inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, name = "unknown", family, model;
  const auto value = [&] { return line.substr(line.find(':') + 2); };
  while (std::getline(in, line) && !line.empty()) {
    if (line.rfind("model name", 0) == 0) name = value();
    else if (line.rfind("cpu family", 0) == 0) family = value();
    else if (line.rfind("model\t", 0) == 0) model = value();
  }
  return family.empty() ? name : name + " (family " + family + ", model " + model + ")";
}

// Runs the registered benchmarks (the program takes its own flags out of argv first). Adds
// --benchmark_enable_random_interleaving=true unless the command line sets it: pairs are only comparable when
// measured in the same moment. The console reporter is used for stdout unless --benchmark_format=json; the
// --benchmark_out file is JSON (--benchmark_out_format is not supported). summary(results) runs at the end.
inline int run(int argc, char** argv, const std::function<void(const Results&)>& summary = {}) {
  static char interleave[] = "--benchmark_enable_random_interleaving=true";
  std::vector<char*> args(argv, argv + argc);
  bool interleave_set = false, tabular = false, json = false, out = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    interleave_set |= a.rfind("--benchmark_enable_random_interleaving", 0) == 0;
    tabular |= a == "--benchmark_counters_tabular=true";
    json |= a == "--benchmark_format=json";
    out |= a.rfind("--benchmark_out=", 0) == 0;
    if (a.rfind("--benchmark_out_format=", 0) == 0 && a != "--benchmark_out_format=json") {
      std::fprintf(stderr, "%s: only JSON output files are supported\n", argv[0]);
      return 1;
    }
  }
  if (!interleave_set) args.insert(args.begin() + 1, interleave);
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::AddCustomContext("cpu_model", cpu_model());

  Results results;
  std::unique_ptr<benchmark::BenchmarkReporter> console;
  if (json) {
    console = std::make_unique<benchmark::JSONReporter>();
  } else {
    int options = benchmark::ConsoleReporter::OO_None;
    if (isatty(STDOUT_FILENO) != 0) options |= benchmark::ConsoleReporter::OO_Color;
    if (tabular) options |= benchmark::ConsoleReporter::OO_Tabular;
    console = std::make_unique<benchmark::ConsoleReporter>(
        static_cast<benchmark::ConsoleReporter::OutputOptions>(options));
  }
  PairReporter display(std::move(console), &results);
  std::unique_ptr<PairReporter> file;
  // (the display reporter records the medians; the file reporter sees the same runs)
  if (out) file = std::make_unique<PairReporter>(std::make_unique<benchmark::JSONReporter>(), nullptr);
  benchmark::RunSpecifiedBenchmarks(&display, file.get());
  if (summary) summary(results);
  benchmark::Shutdown();
  return 0;
}

}  // namespace bench::harness
