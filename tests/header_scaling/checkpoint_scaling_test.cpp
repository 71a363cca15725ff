// Checkpoint-level steps that must stay O(n log n) in the number of tensors and modules_to_not_convert entries:
//   - HfCheckpoint::open naming a shard tensor the index does not map (300,000 tensors, the unmapped one last):
//     the error path searched the whole index once per shard tensor (~4.5e10 pointer comparisons, minutes);
//   - load_bitnet_layers with 400,000 modules_to_not_convert entries and 8,000 2-D tensors: every tensor was
//     substring-searched against every entry (3.2e9 searches, tens of seconds); now the entries are indexed.
// Like header_scaling_test, ctest's TIMEOUT is the check (tests/CMakeLists.txt); times are printed, not asserted.
#include <bitlinear/io/checkpoint.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what);
    ++failures;
  }
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file of zero-size tensors with these names, dtype and shape.
std::string shard_of(const std::vector<std::string>& names, const std::string& entry) {
  std::string header = "{";
  for (std::size_t i = 0; i < names.size(); ++i) header += (i ? ",\"" : "\"") + names[i] + "\":" + entry;
  header += "}";
  std::string file(8, '\0');
  for (int b = 0; b < 8; ++b) file[static_cast<std::size_t>(b)] = static_cast<char>(static_cast<std::uint64_t>(header.size()) >> (8 * b));
  return file + header;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

int main() {
  const fs::path dir = fs::temp_directory_path() / ("bitlinear_ckpt_scaling_" + std::to_string(std::random_device{}()));
  const std::string zero_u8 = R"({"dtype":"U8","shape":[0],"data_offsets":[0,0]})";
  {  // an index that leaves the last tensor of the last shard unmapped
    fs::create_directories(dir / "unmapped");
    constexpr std::size_t n = 300000;
    std::vector<std::string> shard[2];
    std::string index = R"({"weight_map":{)";
    for (std::size_t i = 0; i < n; ++i) {
      const std::string name = "model.layers." + std::to_string(i) + ".w";
      shard[i % 2].push_back(name);
      if (i + 1 < n) index += (i ? ",\"" : "\"") + name + "\":\"s" + std::to_string(i % 2) + ".safetensors\"";
    }
    write_file(dir / "unmapped" / "model.safetensors.index.json", index + "}}");
    write_file(dir / "unmapped" / "config.json", "{}");
    for (int k = 0; k < 2; ++k) write_file(dir / "unmapped" / ("s" + std::to_string(k) + ".safetensors"), shard_of(shard[k], zero_u8));
    const auto t0 = std::chrono::steady_clock::now();
    const std::string e = error_of([&] { (void)bitlinear::HfCheckpoint::open((dir / "unmapped").string()); });
    std::printf("open, %zu tensors, one unmapped: %.3f s\n", n, seconds_since(t0));
    check(e.find("holds tensor \"model.layers." + std::to_string(n - 1) + ".w\"") != std::string::npos,
          "the unmapped tensor is named");
  }
  {  // many modules_to_not_convert entries, many 2-D tensors that are not layers
    fs::create_directories(dir / "exclusions");
    constexpr std::size_t entries = 400000, tensors = 8000;
    std::string config = R"({"quantization_config":{"quant_method":"bitnet","modules_to_not_convert":[)";
    for (std::size_t i = 0; i < entries; ++i) config += (i ? ",\"" : "\"") + ("vision_tower.blocks." + std::to_string(i)) + "\"";
    config += ",\"lm_head\"]}}";
    write_file(dir / "exclusions" / "config.json", config);
    std::vector<std::string> names;
    for (std::size_t i = 0; i < tensors; ++i) names.push_back("model.layers." + std::to_string(i) + ".post_norm.weight");
    write_file(dir / "exclusions" / "model.safetensors",
               shard_of(names, R"({"dtype":"F32","shape":[0,4],"data_offsets":[0,0]})"));
    auto t0 = std::chrono::steady_clock::now();
    const auto checkpoint = bitlinear::HfCheckpoint::open((dir / "exclusions").string());
    std::printf("open, %zu modules_to_not_convert entries: %.3f s\n", entries, seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    const bitlinear::BitNetModel model = bitlinear::load_bitnet_layers(checkpoint);
    std::printf("load_bitnet_layers, %zu entries x %zu 2-D tensors: %.3f s\n", entries, tensors, seconds_since(t0));
    check(model.layers.empty() && model.tensors.size() == tensors, "no layers, every tensor handed back");
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  std::printf("%s\n", failures == 0 ? "checkpoint_scaling: ok" : "checkpoint_scaling: FAILED");
  return failures == 0 ? 0 : 1;
}
