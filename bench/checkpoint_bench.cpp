// Checkpoint loading:
//   BM_ParseHeader/N         SafetensorsView::parse of a header with N tensors (target: 100k in < 0.5 s)
//   BM_LoadBitNet2Blocks     HfCheckpoint::open + load_bitnet_layers of a two-block 2B4T-shaped checkpoint (real
//                            tensor names, shapes and dtypes; random codes; 4096-row embedding) written to a
//                            temporary directory once; MB/s of final layer bytes, mapped or read
// The load benchmark also measures, once, the peak RSS growth of a load in this process (Linux: VmHWM reset
// through /proc/self/clear_refs) against the final layers' bytes plus the mapped pages the load touched (RssFile
// growth): peak_over_layers = (peak growth - touched mapped bytes) / layer bytes (target <= 1.2).
#include <bitlinear/io/checkpoint.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

std::vector<std::uint8_t> header_file(int n) {
  std::string h = "{";
  for (int i = 0; i < n; ++i) {
    h += (i ? "," : "") + ("\"model.layers." + std::to_string(i / 16) + ".t" + std::to_string(i % 16) +
                           ".weight\":{\"dtype\":\"BF16\",\"shape\":[0,2560],\"data_offsets\":[0,0]}");
  }
  h += "}";
  std::vector<std::uint8_t> b;
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(h.size()) >> (8 * i)));
  b.insert(b.end(), h.begin(), h.end());
  return b;
}

void BM_ParseHeader(benchmark::State& state) {
  const std::vector<std::uint8_t> file = header_file(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto view = bitlinear::SafetensorsView::parse(file.data(), file.size());
    benchmark::DoNotOptimize(view.tensors().data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(file.size()));
  state.counters["tensors"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_ParseHeader)->Arg(1000)->Arg(100000)->Unit(benchmark::kMillisecond);

// A two-block checkpoint with the 2B4T names, shapes and dtypes (tied embeddings, 4096-row embedding).
const std::string& checkpoint_dir() {
  static const std::string dir = [] {
    const auto path = std::filesystem::temp_directory_path() / ("bitlinear_bench_ckpt_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path);
    struct T {
      std::string name, dtype;
      std::vector<std::size_t> shape;
      std::size_t bytes;
    };
    const std::size_t hidden = 2560, ffn = 6912, kv = 640, vocab = 4096;
    std::vector<T> tensors = {{"model.embed_tokens.weight", "BF16", {vocab, hidden}, 2 * vocab * hidden},
                              {"model.norm.weight", "BF16", {hidden}, 2 * hidden}};
    const char* names[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                            "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
    const std::size_t shapes[7][2] = {{hidden, hidden}, {kv, hidden}, {kv, hidden}, {hidden, hidden},
                                      {ffn, hidden},    {ffn, hidden}, {hidden, ffn}};
    for (int b = 0; b < 2; ++b) {
      const std::string p = "model.layers." + std::to_string(b) + ".";
      for (int i = 0; i < 7; ++i) {
        tensors.push_back({p + names[i] + ".weight", "U8", {shapes[i][0] / 4, shapes[i][1]}, shapes[i][0] / 4 * shapes[i][1]});
        tensors.push_back({p + names[i] + ".weight_scale", "BF16", {1}, 2});
      }
      for (const char* n : {"input_layernorm", "post_attention_layernorm", "self_attn.attn_sub_norm"}) {
        tensors.push_back({p + n + ".weight", "BF16", {hidden}, 2 * hidden});
      }
      tensors.push_back({p + "mlp.ffn_sub_norm.weight", "BF16", {ffn}, 2 * ffn});
    }
    std::string header = "{";
    std::size_t offset = 0;
    for (const T& t : tensors) {
      header += (header.size() > 1 ? "," : "") + ("\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[");
      for (std::size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
      header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t.bytes) + "]}";
      offset += t.bytes;
    }
    header += "}";
    std::ofstream out(path / "model.safetensors", std::ios::binary);
    const std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
    out << header;
    std::mt19937 rng(1);
    for (const T& t : tensors) {
      std::vector<std::uint8_t> bytes(t.bytes);
      if (t.dtype == "U8") {
        for (auto& v : bytes) v = static_cast<std::uint8_t>((rng() % 3) | (rng() % 3) << 2 | (rng() % 3) << 4 | (rng() % 3) << 6);
      } else {
        for (std::size_t i = 0; i + 1 < bytes.size(); i += 2) bytes[i + 1] = 0x3F, bytes[i] = 0x80;  // 1.0
      }
      out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    std::ofstream(path / "config.json") << R"({"architectures":["BitNetForCausalLM"],"model_type":"bitnet","hidden_size":2560,)"
                                           R"("intermediate_size":6912,"num_hidden_layers":2,"num_attention_heads":20,)"
                                           R"("num_key_value_heads":5,"vocab_size":4096,"tie_word_embeddings":true,)"
                                           R"("quantization_config":{"quant_method":"bitnet","linear_class":"bitlinear","quantization_mode":"offline"}})";
    return path.string();
  }();
  return dir;
}

struct Cleanup {
  ~Cleanup() {
    std::error_code ec;
    if (!checkpoint_dir().empty()) std::filesystem::remove_all(checkpoint_dir(), ec);
  }
};

// kB values of /proc/self/status fields (Linux), -1 elsewhere.
long status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, std::strlen(field), field) == 0) return std::stol(line.substr(std::strlen(field) + 1));
  }
  return -1;
}

void BM_LoadBitNet2Blocks(benchmark::State& state) {
  static Cleanup cleanup;
  const auto access = state.range(0) == 0 ? bitlinear::FileAccess::map : bitlinear::FileAccess::read;
  std::size_t layer_bytes = 0;
  {  // Peak RSS of one load, measured before the timed loop (a fresh mapping; the file may be in the page cache).
    std::ofstream("/proc/self/clear_refs") << "5";  // reset VmHWM to the current RSS (Linux >= 4.0)
    const long before = status_kb("VmRSS:"), file_before = status_kb("RssFile:");
    const auto checkpoint = bitlinear::HfCheckpoint::open(checkpoint_dir(), access);
    const auto model = bitlinear::load_bitnet_layers(checkpoint);
    const long peak = status_kb("VmHWM:"), file_after = status_kb("RssFile:");
    layer_bytes = model.weight_bytes();
    if (before >= 0 && peak >= 0 && file_before >= 0 && file_after >= 0) {
      // Mapped pages this process touched count as RssFile (they are the page cache's, and the kernel may drop
      // them); the rest of the growth is the heap: the layers and whatever transient copies a load makes.
      const double growth = static_cast<double>(peak - before) * 1024.0;
      const double mapped = static_cast<double>(file_after - file_before) * 1024.0;
      state.counters["layers_MB"] = static_cast<double>(layer_bytes) / 1e6;
      state.counters["peak_growth_MB"] = growth / 1e6;
      state.counters["mapped_touched_MB"] = mapped / 1e6;
      state.counters["peak_over_layers"] = (growth - mapped) / static_cast<double>(layer_bytes);
    }
  }
  for (auto _ : state) {
    const auto checkpoint = bitlinear::HfCheckpoint::open(checkpoint_dir(), access);
    auto model = bitlinear::load_bitnet_layers(checkpoint);
    benchmark::DoNotOptimize(model.layers.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(layer_bytes));
  state.SetLabel(access == bitlinear::FileAccess::map ? "mapped" : "read");
}
BENCHMARK(BM_LoadBitNet2Blocks)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
