// Loading a checkpoint's BitLinear layers, against plain copies of the same bytes:
//   BM_LoadPacked/<access>/<threads>  HfCheckpoint::open + load_bitnet_layers of a 4-block 2B4T-shaped packed
//                                     checkpoint (HF U8 [out/4, in], 2560x2560, 640x2560, 6912x2560, 2560x6912);
//                                     access 0 = mapped, 1 = read; MB/s of the packed weight bytes
//   BM_LoadOnlineBF16/<threads>       the same for a 1-block online checkpoint (BF16 weights quantized at load),
//                                     MB/s of BF16 weight bytes
//   BM_CopyMapped/<huge>              the roofline of the mapped path: map the packed shard, copy its weight bytes
//                                     into a fresh heap buffer (new pages, as a layer gets); huge = 1: with the
//                                     transparent-huge-page hint the layer builder gives its buffers
//   BM_ReadFile                       the roofline of the read path: read the packed shard into a fresh buffer
//   BM_Repack/<threads>               the repack alone (io/repack.hpp) into a buffer allocated and touched once:
//                                     what the conversion costs without the page faults of fresh memory
// Every load benchmark also reports the peak RSS growth of one load in a fresh process (this program re-run with
// --rss; Linux /proc/self/status VmHWM) over the layers' bytes: peak_rss_over_layers.
// Builds against older library versions too (no pool option there: every thread count runs serially).
#include <bitlinear/io/checkpoint.hpp>
#include <bitlinear/thread_pool.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if __has_include(<bitlinear/io/repack.hpp>)
#include <bitlinear/io/repack.hpp>
#define LOAD_BENCH_HAS_REPACK 1
#else
#define LOAD_BENCH_HAS_REPACK 0
#endif

namespace {

namespace fs = std::filesystem;

constexpr std::size_t hidden = 2560, ffn = 6912, kv = 640;

struct Tensor {
  std::string name, dtype;
  std::vector<std::size_t> shape;
  std::size_t bytes;
};

// Writes a 2B4T-shaped checkpoint of `blocks` blocks: packed (U8 + BF16 weight_scale) or online (BF16 weights).
// Returns the bytes of the projection weights.
std::size_t write_checkpoint(const fs::path& dir, int blocks, bool packed) {
  fs::create_directories(dir);
  std::vector<Tensor> tensors = {{"model.norm.weight", "BF16", {hidden}, 2 * hidden}};
  const char* names[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                          "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
  const std::size_t shapes[7][2] = {{hidden, hidden}, {kv, hidden}, {kv, hidden}, {hidden, hidden},
                                    {ffn, hidden},    {ffn, hidden}, {hidden, ffn}};
  std::size_t weight_bytes = 0;
  for (int b = 0; b < blocks; ++b) {
    const std::string p = "model.layers." + std::to_string(b) + ".";
    for (int i = 0; i < 7; ++i) {
      const std::size_t out = shapes[i][0], in = shapes[i][1];
      if (packed) {
        tensors.push_back({p + names[i] + ".weight", "U8", {out / 4, in}, out / 4 * in});
        tensors.push_back({p + names[i] + ".weight_scale", "BF16", {1}, 2});
        weight_bytes += out / 4 * in;
      } else {
        tensors.push_back({p + names[i] + ".weight", "BF16", {out, in}, 2 * out * in});
        weight_bytes += 2 * out * in;
      }
    }
    tensors.push_back({p + "input_layernorm.weight", "BF16", {hidden}, 2 * hidden});
  }
  std::string header = "{";
  std::size_t offset = 0;
  for (const Tensor& t : tensors) {
    header += (header.size() > 1 ? "," : "") + ("\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[");
    for (std::size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t.bytes) + "]}";
    offset += t.bytes;
  }
  header += "}";
  std::ofstream out(dir / "model.safetensors", std::ios::binary);
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
  out << header;
  std::mt19937 rng(1);
  for (const Tensor& t : tensors) {
    std::vector<std::uint8_t> bytes(t.bytes);
    if (t.dtype == "U8") {
      for (auto& v : bytes) v = static_cast<std::uint8_t>((rng() % 3) | (rng() % 3) << 2 | (rng() % 3) << 4 | (rng() % 3) << 6);
    } else if (t.shape.size() == 2) {  // BF16 weights: small random values
      for (std::size_t i = 0; i + 1 < bytes.size(); i += 2) {
        bytes[i] = static_cast<std::uint8_t>(rng());
        bytes[i + 1] = static_cast<std::uint8_t>(0x3C + (rng() & 1) * 0x80);  // +-(2^-7 .. 2^-6)
      }
    } else {
      for (std::size_t i = 0; i + 1 < bytes.size(); i += 2) bytes[i + 1] = 0x3F, bytes[i] = 0x80;  // 1.0
    }
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  std::ofstream(dir / "config.json")
      << R"({"architectures":["BitNetForCausalLM"],"model_type":"bitnet","hidden_size":2560,)"
         R"("intermediate_size":6912,"num_hidden_layers":)" << blocks
      << R"(,"num_attention_heads":20,"num_key_value_heads":5,"vocab_size":4096,"tie_word_embeddings":true,)"
      << (packed ? R"("quantization_config":{"quant_method":"bitnet","linear_class":"bitlinear","quantization_mode":"offline"}})"
                 : R"("quantization_config":{"quant_method":"bitnet","linear_class":"autobitlinear","quantization_mode":"online"}})");
  return weight_bytes;
}

struct Checkpoints {
  fs::path root;
  std::size_t packed_bytes = 0, online_bytes = 0;
  Checkpoints() {
    root = fs::temp_directory_path() / ("bitlinear_load_bench_" + std::to_string(std::random_device{}()));
    packed_bytes = write_checkpoint(root / "packed", 4, true);
    online_bytes = write_checkpoint(root / "online", 1, false);
  }
  ~Checkpoints() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

const Checkpoints& checkpoints() {
  static const Checkpoints c;
  return c;
}

bitlinear::ThreadPool& pool_of(std::size_t threads) {
  static bitlinear::ThreadPool one(1), two(2);
  return threads == 1 ? one : two;
}

// options.import.pool where the library has it.
template <class O>
auto set_pool(O& options, bitlinear::ThreadPool* pool, int) -> decltype(options.import.pool = pool, void()) {
  options.import.pool = pool;
}
template <class O>
void set_pool(O&, bitlinear::ThreadPool*, long) {}

long status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0) return std::stol(line.substr(n + 1));
  }
  return -1;
}

// One load in a fresh process (this program, re-run with --rss): peak RSS growth over the layers' bytes, free of
// what this process's heap already holds. Linux (/proc/self/status); prints "peak_kb layer_bytes".
int rss_child(const char* dir, int access, int threads) {
  const long before = status_kb("VmRSS:");
  bitlinear::BitNetLoadOptions options;
  std::unique_ptr<bitlinear::ThreadPool> pool;
  if (threads > 1) pool = std::make_unique<bitlinear::ThreadPool>(static_cast<std::size_t>(threads));
  set_pool(options, pool.get(), 0);
  const auto checkpoint = bitlinear::HfCheckpoint::open(dir, access == 0 ? bitlinear::FileAccess::map : bitlinear::FileAccess::read);
  const auto model = bitlinear::load_bitnet_layers(checkpoint, options);
  std::printf("%ld %zu\n", status_kb("VmHWM:") - before, model.weight_bytes());
  return 0;
}

void measure_rss(benchmark::State& state, const fs::path& dir, bitlinear::FileAccess access, std::size_t threads) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);  // popen runs a shell: name this program itself
  if (ec) return;
  const std::string command = "'" + self.string() + "' --rss '" + dir.string() + "' " +
                              std::to_string(access == bitlinear::FileAccess::map ? 0 : 1) + " " + std::to_string(threads);
  FILE* child = popen(command.c_str(), "r");
  if (child == nullptr) return;
  long peak_kb = -1;
  std::size_t layer_bytes = 0;
  const int got = std::fscanf(child, "%ld %zu", &peak_kb, &layer_bytes);
  pclose(child);
  if (got == 2 && peak_kb >= 0 && layer_bytes > 0) {
    state.counters["layers_MB"] = static_cast<double>(layer_bytes) / 1e6;
    state.counters["peak_rss_growth_MB"] = static_cast<double>(peak_kb) * 1024.0 / 1e6;
    state.counters["peak_rss_over_layers"] = static_cast<double>(peak_kb) * 1024.0 / static_cast<double>(layer_bytes);
  }
}

void run_load(benchmark::State& state, const fs::path& dir, bitlinear::FileAccess access, std::size_t threads,
              std::size_t source_bytes) {
  bitlinear::BitNetLoadOptions options;
  set_pool(options, threads > 1 ? &pool_of(threads) : nullptr, 0);
  measure_rss(state, dir, access, threads);
  for (auto _ : state) {
    const auto checkpoint = bitlinear::HfCheckpoint::open(dir.string(), access);
    auto model = bitlinear::load_bitnet_layers(checkpoint, options);
    benchmark::DoNotOptimize(model.layers.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(source_bytes));
}

void BM_LoadPacked(benchmark::State& state) {
  const auto access = state.range(0) == 0 ? bitlinear::FileAccess::map : bitlinear::FileAccess::read;
  run_load(state, checkpoints().root / "packed", access, static_cast<std::size_t>(state.range(1)), checkpoints().packed_bytes);
  state.SetLabel(access == bitlinear::FileAccess::map ? "mapped" : "read");
}
BENCHMARK(BM_LoadPacked)->Args({0, 1})->Args({0, 2})->Args({1, 1})->Args({1, 2})->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_LoadOnlineBF16(benchmark::State& state) {
  run_load(state, checkpoints().root / "online", bitlinear::FileAccess::map, static_cast<std::size_t>(state.range(0)),
           checkpoints().online_bytes);
  state.SetLabel("mapped");
}
BENCHMARK(BM_LoadOnlineBF16)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The packed shard's bytes, mapped and copied into fresh memory (what a load does at best); MB/s of weight bytes.
void BM_CopyMapped(benchmark::State& state) {
  const std::string path = (checkpoints().root / "packed" / "model.safetensors").string();
  for (auto _ : state) {
    const bitlinear::MappedFile file = bitlinear::MappedFile::open(path);
    const std::size_t n = file.size();
    std::unique_ptr<std::uint8_t[]> copy(new std::uint8_t[n]);
#if LOAD_BENCH_HAS_REPACK
    if (state.range(0) != 0) bitlinear::detail::advise_huge_pages(copy.get(), n);
#endif
    std::memcpy(copy.get(), file.data(), n);
    benchmark::DoNotOptimize(copy.get());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(checkpoints().packed_bytes));
}
BENCHMARK(BM_CopyMapped)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ReadFile(benchmark::State& state) {
  const std::string path = (checkpoints().root / "packed" / "model.safetensors").string();
  const std::size_t n = static_cast<std::size_t>(fs::file_size(path));
  for (auto _ : state) {
    std::unique_ptr<std::uint8_t[]> bytes(new std::uint8_t[n]);
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(bytes.get()), static_cast<std::streamsize>(n));
    benchmark::DoNotOptimize(bytes.get());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(checkpoints().packed_bytes));
}
BENCHMARK(BM_ReadFile)->Unit(benchmark::kMillisecond)->UseRealTime();

#if LOAD_BENCH_HAS_REPACK
// The repack kernel alone, 6912x2560 (HF [1728, 2560]), into memory touched before the loop.
void BM_Repack(benchmark::State& state) {
  const std::size_t rows = ffn / 4, in = hidden;
  std::vector<std::uint8_t> src(rows * in);
  std::mt19937 rng(3);
  for (auto& v : src) v = static_cast<std::uint8_t>((rng() % 3) | (rng() % 3) << 2 | (rng() % 3) << 4 | (rng() % 3) << 6);
  const std::size_t row_bytes = bitlinear::Ternary::packed_row_bytes(in);
  std::vector<std::uint8_t> dst(4 * rows * row_bytes, 0);
  const bitlinear::detail::PackedWeightsView view{dst.data(), 4 * rows, in, row_bytes, 1};
  bitlinear::ThreadPool* pool = state.range(0) > 1 ? &pool_of(2) : nullptr;
  for (auto _ : state) {
    bitlinear::detail::for_each_chunk(pool, rows, bitlinear::detail::hf_rows_per_task(in), [&](std::size_t b, std::size_t e) {
      benchmark::DoNotOptimize(bitlinear::detail::hf_repack_rows(src.data(), rows, in, view, b, e));
    });
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(src.size()));
}
BENCHMARK(BM_Repack)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "--rss") == 0) return rss_child(argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
