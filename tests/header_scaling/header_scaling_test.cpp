// Issue 12, item 1: parsing a safetensors header must be O(n log n) in the number of tensors and metadata keys.
// The headers here (250,000 zero-size tensors, then 250,000 metadata keys, then a duplicate at the very end)
// parse in well under a second with the sorted duplicate checks; the quadratic checks they replaced compared
// each name with every earlier one (~3e10 string comparisons each, minutes). ctest runs this program with a
// TIMEOUT (tests/CMakeLists.txt), which is what fails if parsing turns quadratic again: no timing is asserted
// here, because timings on a shared machine are noise (bench/checkpoint_bench.cpp measures them).
#include <bitlinear/io/safetensors.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

std::vector<std::uint8_t> file_of(const std::string& header) {
  std::vector<std::uint8_t> b;
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(header.size()) >> (8 * i)));
  b.insert(b.end(), header.begin(), header.end());
  return b;
}

int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what);
    ++failures;
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main() {
  constexpr int n = 250000;
  std::string tensors = "{";
  for (int i = 0; i < n; ++i) {
    tensors += "\"model.layers." + std::to_string(i) + ".w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},";
  }
  std::string metadata = "{\"__metadata__\":{";
  for (int i = 0; i < n; ++i) metadata += "\"key" + std::to_string(i) + "\":\"v\",";

  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::uint8_t> ok = file_of(tensors + "\"last\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}");
  const auto view = bitlinear::SafetensorsView::parse(ok.data(), ok.size());
  check(view.tensors().size() == static_cast<std::size_t>(n) + 1, "every tensor parsed");
  std::size_t found = 0;
  for (int i = 0; i < n; i += 7) found += view.find("model.layers." + std::to_string(i) + ".w") != nullptr;
  check(found == (n + 6) / 7, "lookups by name find every tensor");
  std::printf("%d tensors (%zu header bytes): parsed and looked up in %.3f s\n", n + 1, ok.size(), seconds_since(t0));

  t0 = std::chrono::steady_clock::now();
  std::vector<std::uint8_t> dup = file_of(tensors + "\"model.layers.0.w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}");
  try {
    (void)bitlinear::SafetensorsView::parse(dup.data(), dup.size());
    check(false, "a duplicate tensor name is rejected");
  } catch (const std::invalid_argument& e) {
    check(std::string(e.what()).find("\"model.layers.0.w\" appears twice") != std::string::npos, e.what());
  }
  std::printf("%d tensors with a duplicate: rejected in %.3f s\n", n + 1, seconds_since(t0));

  t0 = std::chrono::steady_clock::now();
  std::vector<std::uint8_t> meta = file_of(metadata + "\"key0\":\"w\"}}");
  try {
    (void)bitlinear::SafetensorsView::parse(meta.data(), meta.size());
    check(false, "a duplicate metadata key is rejected");
  } catch (const std::invalid_argument& e) {
    check(std::string(e.what()).find("\"key0\" appears twice") != std::string::npos, e.what());
  }
  std::vector<std::uint8_t> meta_ok = file_of(metadata + "\"last\":\"w\"}}");
  check(bitlinear::SafetensorsView::parse(meta_ok.data(), meta_ok.size()).metadata().size() == static_cast<std::size_t>(n) + 1,
        "every metadata key parsed");
  std::printf("%d metadata keys: parsed twice in %.3f s\n", n + 1, seconds_since(t0));
  return failures == 0 ? 0 : 1;
}
