// The base-3 GGUF row converters (io/gguf_repack_base3.hpp) against the decoders by fields they replace: converts
// `rows` rows of 2560 weights of random TQ1_0 or PTQ1_0 bytes (64 distinct rows, reused) and prints the rate.
//   g++ -std=c++17 -O3 -Iinclude bench/gguf_base3_callgrind_driver.cpp -o build/gguf_base3_driver
//   valgrind --tool=callgrind build/gguf_base3_driver <variant> <ptq> 1000   (and again with 0 rows)
// The difference of the two Ir totals / 1000 is the count of one row (10 TQ1_0 or 20 PTQ1_0 blocks). Variants:
// 0 by fields to 2-bit rows (decode_gguf_row_by_fields), 1 decode_gguf_row, 2 by fields to compact rows
// (decode_gguf_row_compact_by_fields), 3 decode_gguf_row_compact, 4 = 3 plus the compact canonical check a layer
// runs on every row (noncanonical_report<TernaryCompact>). ptq: 0 TQ1_0, 1 PTQ1_0. Without valgrind, `perf stat -e
// task-clock` of a 200000-row run minus a 0-row run gives the CPU time, which a busy machine inflates less than
// the wall time.
#include <bitlinear/io/gguf_blocks.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
using namespace bitlinear;
int main(int, char** argv) {
  const int variant = std::atoi(argv[1]);  // 0 old 2-bit, 1 new 2-bit, 2 old compact, 3 new compact
  const bool ptq = std::atoi(argv[2]) != 0;
  const std::size_t rows = std::strtoul(argv[3], nullptr, 10);
  const std::size_t in = 2560;
  const GgufBlockType type = ptq ? GgufBlockType::ptq1_0 : GgufBlockType::tq1_0;
  const auto info = gguf_block_info(type);
  const std::size_t src_row = gguf_block_row_bytes(type, in);
  std::vector<std::uint8_t> src(src_row * 64);
  std::mt19937 rng(1);
  for (auto& b : src) b = static_cast<std::uint8_t>(rng());
  std::vector<std::uint8_t> out(Ternary::packed_row_bytes(in));
  std::vector<float> scales(in / info.block_weights);
  unsigned sum = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint8_t* s = src.data() + (r % 64) * src_row;
    switch (variant) {
      case 0: detail::decode_gguf_row_by_fields(type, s, in, out.data(), scales.data()); break;
      case 1: decode_gguf_row(type, s, in, out.data(), scales.data()); break;
      case 2: detail::decode_gguf_row_compact_by_fields(type, s, in, out.data(), scales.data()); break;
      case 3: decode_gguf_row_compact(type, s, in, out.data(), scales.data()); break;
      default:
        decode_gguf_row_compact(type, s, in, out.data(), scales.data());
        sum += static_cast<unsigned>(detail::noncanonical_report<TernaryCompact>(out.data(), 1, in).size());
        break;
    }
    sum += out[r % 64];
  }
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("variant %d %s rows %zu blocks %zu: %.3f ms, %.1f MB/s of tensor bytes (%u)\n", variant, info.name, rows,
              rows * (in / info.block_weights), sec * 1e3, static_cast<double>(rows * src_row) / sec / 1e6, sum);
}
