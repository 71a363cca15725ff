// Importing Hugging Face packed weights builds each layer's buffer once. This
// program replaces the global operator new/delete to track the live heap bytes and their peak, and checks:
//   - ternary_from_hf_packed: peak - before <= (after - before) + one row + 64 KiB of slack, i.e. no transient
//     copy of the weights (before the fix, a canonical copy as large as the layer was made and then copied);
//   - load_bitnet_layers on a two-block checkpoint written here: the same bound for the whole model.
// Not built under sanitizers (they replace the allocator themselves) and only on glibc (malloc_usable_size).
#include <bitlinear/io/checkpoint.hpp>

#include <malloc.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <random>
#include <string>
#include <vector>

namespace {
std::atomic<long long> g_live{0};
std::atomic<long long> g_peak{0};

void note_alloc(void* p) {
  if (p == nullptr) return;
  const long long now = g_live.fetch_add(static_cast<long long>(malloc_usable_size(p))) + static_cast<long long>(malloc_usable_size(p));
  long long peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}
void note_free(void* p) {
  if (p != nullptr) g_live.fetch_sub(static_cast<long long>(malloc_usable_size(p)));
}
void* allocate(std::size_t size, std::size_t alignment) {
  void* p = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    p = std::malloc(size == 0 ? 1 : size);
  } else if (posix_memalign(&p, alignment, size == 0 ? 1 : size) != 0) {
    p = nullptr;
  }
  if (p == nullptr) throw std::bad_alloc();
  note_alloc(p);
  return p;
}
void release(void* p) {
  note_free(p);
  std::free(p);
}
}  // namespace

void* operator new(std::size_t size) { return allocate(size, 0); }
void* operator new[](std::size_t size) { return allocate(size, 0); }
void* operator new(std::size_t size, std::align_val_t a) { return allocate(size, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t size, std::align_val_t a) { return allocate(size, static_cast<std::size_t>(a)); }
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }
void operator delete(void* p, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { release(p); }

namespace {

int failures = 0;

// Runs `build` (which returns what it built, kept alive until the measurement ends) and checks its peak heap.
template <class Build>
void check_peak(const char* what, std::size_t weight_bytes, std::size_t row_bytes, Build&& build) {
  const long long before = g_live.load();
  g_peak.store(before);
  auto result = build();
  const long long after = g_live.load();
  const long long peak = g_peak.load();
  const long long kept = after - before, transient = peak - after;
  const long long allowed = static_cast<long long>(row_bytes) + (64 << 10);
  std::printf("%-34s weights %9zu B, kept %9lld B, transient peak above that %7lld B (allowed %lld)\n", what,
              weight_bytes, kept, transient, allowed);
  if (kept < static_cast<long long>(weight_bytes)) {
    std::printf("FAIL: %s: kept fewer bytes than the layers' weights (is the allocator counted?)\n", what);
    ++failures;
  }
  if (transient > allowed) {
    std::printf("FAIL: %s: a transient allocation of %lld bytes (a second copy of the weights?)\n", what, transient);
    ++failures;
  }
}

std::vector<std::uint8_t> random_hf_packed(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> p(n);
  for (auto& b : p) {
    b = 0;
    for (int i = 0; i < 4; ++i) b = static_cast<std::uint8_t>(b | (rng() % 3) << (2 * i));
  }
  return p;
}

void write_checkpoint(const std::string& dir, std::size_t hidden, std::size_t ffn, std::size_t kv, int blocks) {
  struct T {
    std::string name, dtype;
    std::vector<std::size_t> shape;
    std::vector<std::uint8_t> bytes;
  };
  std::vector<T> tensors;
  const char* names[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                          "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
  const std::size_t shapes[7][2] = {{hidden, hidden}, {kv, hidden}, {kv, hidden}, {hidden, hidden},
                                    {ffn, hidden},    {ffn, hidden}, {hidden, ffn}};
  for (int b = 0; b < blocks; ++b) {
    for (int i = 0; i < 7; ++i) {
      const std::string m = "model.layers." + std::to_string(b) + "." + names[i];
      tensors.push_back({m + ".weight", "U8", {shapes[i][0] / 4, shapes[i][1]},
                         random_hf_packed(shapes[i][0] / 4 * shapes[i][1], static_cast<std::uint32_t>(b * 7 + i))});
      tensors.push_back({m + ".weight_scale", "BF16", {1}, {0x80, 0x3F}});  // 1.0
    }
    tensors.push_back({"model.layers." + std::to_string(b) + ".input_layernorm.weight", "BF16", {hidden},
                       std::vector<std::uint8_t>(2 * hidden, 0)});
  }
  std::string header = "{";
  std::size_t offset = 0;
  for (const T& t : tensors) {
    header += (offset || header.size() > 1 ? "," : "") + ("\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[");
    for (std::size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t.bytes.size()) + "]}";
    offset += t.bytes.size();
  }
  header += "}";
  std::ofstream out(dir + "/model.safetensors", std::ios::binary);
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
  out << header;
  for (const T& t : tensors) out.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
  std::ofstream(dir + "/config.json") << R"({"model_type":"bitnet","quantization_config":{"quant_method":"bitnet","linear_class":"bitlinear"}})";
}

}  // namespace

int main() {
  // One layer at a 2B4T FFN shape (gate_proj: 6912 x 2560), and the 256x-amplifying narrow shape.
  for (const auto& shape : {std::pair<std::size_t, std::size_t>{1728, 2560}, {1u << 16, 1}}) {
    const std::size_t rows = shape.first, in = shape.second;  // (not a structured binding: lambdas capture it)
    const std::vector<std::uint8_t> packed = random_hf_packed(rows * in, 3);
    const std::size_t bytes = bitlinear::packed_size<bitlinear::Ternary>(4 * rows, in);
    const std::string what = "ternary_from_hf_packed " + std::to_string(rows) + "x" + std::to_string(in);
    check_peak(what.c_str(), bytes, bitlinear::Ternary::packed_row_bytes(in), [&] {
      return bitlinear::ternary_from_hf_packed(packed.data(), rows, in, 1.0f, bitlinear::HfScaleConvention::divide);
    });
  }
  // A whole two-block checkpoint (hidden 1024, FFN 2816, kv 256), mapped.
  const auto dir = std::filesystem::temp_directory_path() / ("bitlinear_import_memory_" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  write_checkpoint(dir.string(), 1024, 2816, 256, 2);
  {
    const auto checkpoint = bitlinear::HfCheckpoint::open(dir.string());
    std::size_t weight_bytes = 0;
    check_peak("load_bitnet_layers, 2 blocks", 2 * (2 * 1024 * 256 + 2 * 256 * 256 + 3 * 2816 * 256), 704, [&] {
      bitlinear::BitNetModel model = bitlinear::load_bitnet_layers(checkpoint);
      weight_bytes = model.weight_bytes();
      return model;
    });
    if (weight_bytes != 2 * (2 * 1024 * 256 + 2 * 256 * 256 + 3 * 2816 * 256)) {
      std::printf("FAIL: the model holds %zu weight bytes\n", weight_bytes);
      ++failures;
    }
  }
  std::filesystem::remove_all(dir);
  std::printf("%s\n", failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}
