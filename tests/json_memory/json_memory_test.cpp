// Memory of the JSON readers (config.json, model.safetensors.index.json, a whole HfCheckpoint::open) on large
// documents, measured as peak RSS growth. Each case runs in a fresh process (this program re-executes itself
// with "case <name> <path>"): the parent writes the inputs, the child reads its input, resets the peak
// (/proc/self/clear_refs "5"), runs the reader and compares VmHWM with the RSS before it. The bounds:
//   - index_valid:   a valid 25 MB index, parse_hf_index: growth <= 8 x the file;
//   - index_junk:    a 50 MB index of 2.5 million distinct keys in one object, refused at its last byte:
//                    growth <= 8 x the file;
//   - config_valid:  a valid 16 MiB config.json read and parsed: growth <= 64 MiB, and after the call only the
//                    extracted fields remain (RSS after malloc_trim within 4 MiB of the start);
//   - checkpoint_open: HfCheckpoint::open on a sharded checkpoint with that 25 MB index (its shards hold the
//                    same tensors, zero-sized): growth <= 8 x (index + shard headers).
// Times are printed, not asserted (the machine is shared). Linux only, and not under sanitizers (they change
// the RSS); tests/CMakeLists.txt registers it accordingly. Before the single lexer, index_valid needed ~5 GB.
#include <bitlinear/io/checkpoint.hpp>

#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') return std::atol(line.c_str() + n + 1);
  }
  return -1;
}

bool reset_peak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string tensor_name(std::size_t i) {
  return "model.layers." + std::to_string(i / 7) + ".proj" + std::to_string(i % 7) + ".weight_of_a_longer_name";
}

// The sharded checkpoint: an index of ~25 MB mapping `n` tensors to two shards, and the shards.
std::size_t write_checkpoint(const fs::path& dir, std::size_t target_bytes) {
  fs::create_directories(dir);
  write_file(dir / "config.json", R"({"quantization_config":{"quant_method":"bitnet"}})");
  std::string index = "{\"metadata\":{\"total_size\":0},\"weight_map\":{";
  std::string shard[2] = {"{", "{"};
  for (std::size_t i = 0; index.size() < target_bytes; ++i) {
    const std::string name = tensor_name(i);
    const int k = static_cast<int>(i % 2);
    index += (i ? ",\n  \"" : "\n  \"") + name + "\": \"model-0000" + std::to_string(k + 1) + "-of-00002.safetensors\"";
    shard[k] += (shard[k].size() > 1 ? "," : "") + ("\"" + name + "\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}");
  }
  write_file(dir / "model.safetensors.index.json", index + "\n}}\n");
  std::size_t header_bytes = 0;
  for (int k = 0; k < 2; ++k) {
    shard[k] += "}";
    std::string file(8, '\0');
    for (int b = 0; b < 8; ++b) file[static_cast<std::size_t>(b)] = static_cast<char>(static_cast<std::uint64_t>(shard[k].size()) >> (8 * b));
    header_bytes += shard[k].size();
    write_file(dir / ("model-0000" + std::to_string(k + 1) + "-of-00002.safetensors"), file + shard[k]);
  }
  return header_bytes;
}

std::string junk_index(std::size_t target_bytes) {
  std::string s = "{\"weight_map\":{},\"junk\":{";
  for (std::size_t i = 0; s.size() < target_bytes; ++i) s += "\"" + std::to_string(i) + "\":0,";
  return s + "}";  // ",}": refused at the very end, after every key was seen
}

std::string big_config(std::size_t target_bytes) {
  std::string s = R"({"model_type":"bitnet","hidden_size":2560,"num_hidden_layers":30,"extra":[)";
  for (std::size_t i = 0; s.size() + 200 < target_bytes; ++i) s += (i ? ",{\"k\":" : "{\"k\":") + std::to_string(i) + ",\"v\":[1,2.5,true,null,\"x\"]}";
  s += R"(],"quantization_config":{"quant_method":"bitnet","modules_to_not_convert":["lm_head"]}})";
  return s;
}

// The child: runs one case and prints "<name> <input MiB> <growth MiB> <seconds> <extra>"; exit status 0 if
// within its bound.
int run_case(const std::string& name, const std::string& path) {
  double input_bytes = 0;
  long before = 0;
  std::chrono::steady_clock::time_point t0;
  double cpu0 = 0;
  auto cpu_seconds = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  };
  // Wall time, then CPU time (the machine is shared: the CPU time is what the reader itself cost).
  char timing[64];
  auto seconds = [&] {
    std::snprintf(timing, sizeof timing, "%.2f s wall, %.2f s CPU",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), cpu_seconds() - cpu0);
    return timing;
  };
  auto start = [&] {
    if (!reset_peak()) {
      std::printf("%s: cannot reset the peak RSS (/proc/self/clear_refs); skipped\n", name.c_str());
      std::exit(0);
    }
    before = status_kib("VmRSS");
    cpu0 = cpu_seconds();
    t0 = std::chrono::steady_clock::now();
  };
  auto growth_mib = [&] { return static_cast<double>(status_kib("VmHWM") - before) / 1024.0; };
  const double mib = 1024.0 * 1024.0;
  if (name == "index_valid" || name == "index_junk") {
    const std::string text = read_all(path);
    input_bytes = static_cast<double>(text.size());
    start();
    bool refused = false;
    std::size_t entries = 0;
    try {
      entries = bitlinear::parse_hf_index(text).size();
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    const double g = growth_mib();
    const char* s = seconds();
    std::printf("%s: %.1f MiB input, %zu entries%s, peak RSS growth %.1f MiB (%.2f x), %s\n", name.c_str(),
                input_bytes / mib, entries, refused ? " (refused)" : "", g, g * mib / input_bytes, s);
    const bool expect_refused = name == "index_junk";
    return refused == expect_refused && g * mib <= 8 * input_bytes ? 0 : 1;
  }
  if (name == "config_valid") {
    input_bytes = static_cast<double>(fs::file_size(path));
    start();
    bitlinear::HfModelConfig c;
    {
      const std::string text = bitlinear::detail::read_text_file(path, bitlinear::HfCheckpoint::max_config_bytes);
      c = bitlinear::parse_hf_config(text);
    }
    const double g = growth_mib();
    const char* s = seconds();
    malloc_trim(0);
    const double kept = static_cast<double>(status_kib("VmRSS") - before) / 1024.0;
    std::printf("%s: %.1f MiB input, peak RSS growth %.1f MiB, %.1f MiB kept after the call, %s (hidden_size %llu)\n",
                name.c_str(), input_bytes / mib, g, kept, s, static_cast<unsigned long long>(c.hidden_size));
    return g <= 64 && kept <= 4 && c.hidden_size == 2560 && c.quantization.modules_to_not_convert.size() == 1 ? 0 : 1;
  }
  if (name == "checkpoint_open") {
    const fs::path dir(path);
    input_bytes = static_cast<double>(fs::file_size(dir / "model.safetensors.index.json"));
    const double headers = static_cast<double>(fs::file_size(dir / "model-00001-of-00002.safetensors") +
                                               fs::file_size(dir / "model-00002-of-00002.safetensors"));
    start();
    const auto c = bitlinear::HfCheckpoint::open(dir.string());
    const double g = growth_mib();
    const char* s = seconds();
    std::printf("checkpoint_open: %.1f MiB index + %.1f MiB shard headers, %zu tensors, peak RSS growth %.1f MiB "
                "(%.2f x the index, %.2f x index + headers), %s\n",
                input_bytes / mib, headers / mib, c.tensors().size(), g, g * mib / input_bytes,
                g * mib / (input_bytes + headers), s);
    return g * mib <= 8 * (input_bytes + headers) ? 0 : 1;
  }
  std::printf("unknown case %s\n", name.c_str());
  return 2;
}

int spawn(const char* self, const std::string& name, const std::string& path) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    execl(self, self, "case", name.c_str(), path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return 3;
  if (!WIFEXITED(status)) {
    std::printf("FAIL: %s crashed\n", name.c_str());
    return 4;
  }
  if (WEXITSTATUS(status) != 0) std::printf("FAIL: %s is outside its bound\n", name.c_str());
  return WEXITSTATUS(status);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "case") return run_case(argv[2], argv[3]);
  const fs::path dir = fs::temp_directory_path() / ("bitlinear_json_memory_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::size_t mb = 1000 * 1000;
  (void)write_checkpoint(dir / "ckpt", 25 * mb);
  write_file(dir / "junk.json", junk_index(50 * mb));
  write_file(dir / "config.json", big_config(std::size_t{16} << 20));
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  int failures = 0;
  failures += spawn(self.c_str(), "index_valid", (dir / "ckpt" / "model.safetensors.index.json").string()) != 0;
  failures += spawn(self.c_str(), "index_junk", (dir / "junk.json").string()) != 0;
  failures += spawn(self.c_str(), "config_valid", (dir / "config.json").string()) != 0;
  failures += spawn(self.c_str(), "checkpoint_open", (dir / "ckpt").string()) != 0;
  std::error_code ec;
  if (std::getenv("JSON_MEMORY_KEEP") == nullptr) fs::remove_all(dir, ec);
  std::printf("%s\n", failures == 0 ? "json_memory: all cases within their bounds" : "json_memory: FAILED");
  return failures == 0 ? 0 : 1;
}
