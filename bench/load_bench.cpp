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
//   BM_LoadGguf/<type>/<threads>      GgufFile::open (mapped) + load_gguf_layers of a 4-block 2B4T-shaped GGUF file
//                                     whose projections are all of one type (0 I2_S, 1 TQ2_0, 2 TQ1_0 as a
//                                     1.6-bit layer, 3 Q1_0, 4 Q2_0, 5 PQ2_0, 6 PTQ1_0 as a 1.6-bit layer,
//                                     7 Q2_0_g128); random valid codes, block scales 1.0; MB/s of the tensors'
//                                     bytes; threads 2: options.import.pool is a 2-thread pool
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

#if __has_include(<bitlinear/io/gguf_model.hpp>)
#include <bitlinear/io/gguf_model.hpp>

#include "gguf_writer.hpp"  // tests/: the GGUF writer of the tests
#define LOAD_BENCH_HAS_GGUF 1
#else
#define LOAD_BENCH_HAS_GGUF 0
#endif

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

#if LOAD_BENCH_HAS_GGUF
// GGUF types of BM_LoadGguf, in argument order: name, ggml type id, weights and bytes per block, where the block's
// fp16 scale sits (-1: I2_S, one f32 scale per tensor after the codes).
struct GgufBenchType {
  const char* name;
  std::uint32_t id;
  std::size_t block_weights, block_bytes;
  int scale_offset;
};
constexpr GgufBenchType kGgufTypes[] = {
    {"I2_S", 36, 128, 32, -1},  {"TQ2_0", 35, 256, 66, 64},  {"TQ1_0", 34, 256, 54, 52},
    {"Q1_0", 41, 128, 18, 0},   {"Q2_0", 42, 64, 18, 0},     {"PQ2_0", 142, 128, 34, 0},
    {"PTQ1_0", 143, 128, 28, 26}, {"Q2_0_g128", 42, 128, 34, 0}};
constexpr std::size_t kGgufTypeCount = sizeof kGgufTypes / sizeof kGgufTypes[0];

// One projection of `type`, rows x in, random valid codes: I2_S fields 0..2 (-1, 0, +1) and scale 1.0 after the
// codes; the block types' random bytes are valid codes as they are (every byte decodes), with each block's d 1.0.
gguf_test::Bytes random_gguf_tensor(const GgufBenchType& type, std::size_t rows, std::size_t in, std::mt19937& rng) {
  const std::size_t n = rows * in;
  gguf_test::Bytes bytes(n / type.block_weights * type.block_bytes + (type.scale_offset < 0 ? 32 : 0));
  for (std::size_t i = 0; i < n / type.block_weights * type.block_bytes; ++i) {
    bytes[i] = static_cast<std::uint8_t>(type.scale_offset < 0 ? (rng() % 3) | (rng() % 3) << 2 | (rng() % 3) << 4 | (rng() % 3) << 6
                                                               : rng());
  }
  if (type.scale_offset < 0) {
    const float one = 1.0f;
    std::memcpy(bytes.data() + n / 4, &one, sizeof one);
  } else {
    for (std::size_t b = 0; b < n / type.block_weights; ++b) {
      bytes[b * type.block_bytes + static_cast<std::size_t>(type.scale_offset)] = 0x00;  // fp16 1.0 = 0x3C00
      bytes[b * type.block_bytes + static_cast<std::size_t>(type.scale_offset) + 1] = 0x3C;
    }
  }
  return bytes;
}

// Writes a `blocks`-block 2B4T-shaped GGUF file whose seven projections per block are of `type`; returns their bytes.
std::size_t write_gguf(const fs::path& path, int blocks, const GgufBenchType& type) {
  const bool i2s = type.scale_offset < 0;
  const std::string arch = i2s ? "bitnet-b1.58" : "llama";  // id 36 is I2_S in bitnet.cpp's files
  gguf_test::Writer w;
  w.kv_str("general.architecture", arch);
  w.kv_u32(arch + ".block_count", static_cast<std::uint32_t>(blocks));
  const char* names[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
  const std::size_t shapes[7][2] = {{hidden, hidden}, {kv, hidden}, {kv, hidden}, {hidden, hidden},
                                    {ffn, hidden},    {ffn, hidden}, {hidden, ffn}};
  std::mt19937 rng(11);
  std::size_t bytes = 0;
  for (int b = 0; b < blocks; ++b) {
    for (int p = 0; p < 7; ++p) {
      gguf_test::Bytes data = random_gguf_tensor(type, shapes[p][0], shapes[p][1], rng);
      bytes += data.size();
      w.tensor("blk." + std::to_string(b) + "." + names[p] + ".weight", {shapes[p][1], shapes[p][0]}, type.id,
               std::move(data));
    }
  }
  const gguf_test::Bytes file = w.build();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
  return bytes;
}
#endif

struct Checkpoints {
  fs::path root;
  std::size_t packed_bytes = 0, online_bytes = 0;
  std::size_t gguf_bytes[8] = {};
  Checkpoints() {
    root = fs::temp_directory_path() / ("bitlinear_load_bench_" + std::to_string(std::random_device{}()));
    packed_bytes = write_checkpoint(root / "packed", 4, true);
    online_bytes = write_checkpoint(root / "online", 1, false);
#if LOAD_BENCH_HAS_GGUF
    for (std::size_t t = 0; t < kGgufTypeCount; ++t) gguf_bytes[t] = write_gguf(gguf_path(t), 4, kGgufTypes[t]);
#endif
  }
  fs::path gguf_path(std::size_t type) const { return root / ("model" + std::to_string(type) + ".gguf"); }
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

#if LOAD_BENCH_HAS_GGUF
// A layer's float scales beside its codes: none per tensor, one float per group.
std::size_t scale_bytes(const bitlinear::TernaryLinear&) { return 0; }
template <class Format>
std::size_t scale_bytes(const bitlinear::GroupedLinear<Format>& layer) {
  return layer.group_scales().size() * sizeof(float);
}

// The same for one GGUF load (mapped): prints "peak_kb layer_bytes".
int rss_child_gguf(const char* path, int threads) {
  const long before = status_kb("VmRSS:");
  bitlinear::GgufModelLoadOptions options;
  std::unique_ptr<bitlinear::ThreadPool> pool;
  if (threads > 1) pool = std::make_unique<bitlinear::ThreadPool>(static_cast<std::size_t>(threads));
  set_pool(options, pool.get(), 0);
  const auto file = bitlinear::GgufFile::open(path);
  const auto model = bitlinear::load_gguf_layers(file, options);
  std::size_t layer_bytes = 0;
  for (const auto& l : model.layers) {
    std::visit([&](const auto& layer) { layer_bytes += layer.packed_weights_size() + scale_bytes(layer); }, l.layer);
  }
  std::printf("%ld %zu\n", status_kb("VmHWM:") - before, layer_bytes);
  return 0;
}
#endif

// Runs this program with `arguments` in a fresh process and reports the peak RSS growth it prints.
void measure_rss_of(benchmark::State& state, const std::string& arguments) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);  // popen runs a shell: name this program itself
  if (ec) return;
  const std::string command = "'" + self.string() + "' " + arguments;
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

void measure_rss(benchmark::State& state, const fs::path& dir, bitlinear::FileAccess access, std::size_t threads) {
  measure_rss_of(state, "--rss '" + dir.string() + "' " + std::to_string(access == bitlinear::FileAccess::map ? 0 : 1) +
                            " " + std::to_string(threads));
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

#if LOAD_BENCH_HAS_GGUF
void BM_LoadGguf(benchmark::State& state) {
  const auto type = static_cast<std::size_t>(state.range(0));
  const auto threads = static_cast<std::size_t>(state.range(1));
  const std::string path = checkpoints().gguf_path(type).string();
  measure_rss_of(state, "--rss-gguf '" + path + "' " + std::to_string(threads));
  bitlinear::GgufModelLoadOptions options;
  set_pool(options, threads > 1 ? &pool_of(threads) : nullptr, 0);
  for (auto _ : state) {
    const auto file = bitlinear::GgufFile::open(path);
    auto model = bitlinear::load_gguf_layers(file, options);
    benchmark::DoNotOptimize(model.layers.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(checkpoints().gguf_bytes[type]));
  state.SetLabel(kGgufTypes[type].name);
}
BENCHMARK(BM_LoadGguf)
    ->ArgsProduct({benchmark::CreateDenseRange(0, static_cast<int>(kGgufTypeCount) - 1, 1), {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#endif

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
#if LOAD_BENCH_HAS_GGUF
  if (argc == 4 && std::strcmp(argv[1], "--rss-gguf") == 0) return rss_child_gguf(argv[2], std::atoi(argv[3]));
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
