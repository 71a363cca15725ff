// Issue-rate probe (Zen 5 VM, 2026-12-05): 12 independent vpdpbusd chains alone (mode 0), with one cvt and one fma
// per two vpdpbusd (mode 1: the group-128 GEMM mix), and with 7 loads per 12 (mode 2). Build: g++ -O2 -mavx512f
// -mavx512vnni; measured 6.62, 4.54 and 6.42 G vpdpbusd/s.
#include <chrono>
#include <cstdio>
alignas(64) static char buf[512];
int main() {
  const long n = 100000000;
  for (int mode = 0; mode < 3; ++mode) {
  auto t0 = std::chrono::steady_clock::now();
  if (mode == 0) for (long i = 0; i < n; ++i) __asm__ volatile(
    "vpdpbusd %%zmm30, %%zmm31, %%zmm0\n vpdpbusd %%zmm30, %%zmm31, %%zmm1\n vpdpbusd %%zmm30, %%zmm31, %%zmm2\n vpdpbusd %%zmm30, %%zmm31, %%zmm3\n"
    "vpdpbusd %%zmm30, %%zmm31, %%zmm4\n vpdpbusd %%zmm30, %%zmm31, %%zmm5\n vpdpbusd %%zmm30, %%zmm31, %%zmm6\n vpdpbusd %%zmm30, %%zmm31, %%zmm7\n"
    "vpdpbusd %%zmm30, %%zmm31, %%zmm8\n vpdpbusd %%zmm30, %%zmm31, %%zmm9\n vpdpbusd %%zmm30, %%zmm31, %%zmm10\n vpdpbusd %%zmm30, %%zmm31, %%zmm11\n" ::: "xmm0","xmm1","xmm2","xmm3","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11");
  if (mode == 1) for (long i = 0; i < n; ++i) __asm__ volatile(
    "vpdpbusd %%zmm30, %%zmm31, %%zmm0\n vpdpbusd %%zmm30, %%zmm31, %%zmm1\n vpdpbusd %%zmm30, %%zmm31, %%zmm2\n vpdpbusd %%zmm30, %%zmm31, %%zmm3\n"
    "vpdpbusd %%zmm30, %%zmm31, %%zmm4\n vpdpbusd %%zmm30, %%zmm31, %%zmm5\n vpdpbusd %%zmm30, %%zmm31, %%zmm6\n vpdpbusd %%zmm30, %%zmm31, %%zmm7\n"
    "vpdpbusd %%zmm30, %%zmm31, %%zmm8\n vpdpbusd %%zmm30, %%zmm31, %%zmm9\n vpdpbusd %%zmm30, %%zmm31, %%zmm10\n vpdpbusd %%zmm30, %%zmm31, %%zmm11\n"
    "vcvtdq2ps %%zmm0, %%zmm20\n vcvtdq2ps %%zmm1, %%zmm21\n vcvtdq2ps %%zmm2, %%zmm22\n vcvtdq2ps %%zmm3, %%zmm23\n vcvtdq2ps %%zmm4, %%zmm24\n vcvtdq2ps %%zmm5, %%zmm25\n"
    "vfmadd231ps %%zmm20, %%zmm29, %%zmm12\n vfmadd231ps %%zmm21, %%zmm29, %%zmm13\n vfmadd231ps %%zmm22, %%zmm29, %%zmm14\n vfmadd231ps %%zmm23, %%zmm29, %%zmm15\n vfmadd231ps %%zmm24, %%zmm29, %%zmm16\n vfmadd231ps %%zmm25, %%zmm29, %%zmm17\n"
    ::: "xmm0","xmm1","xmm2","xmm3","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15","xmm16","xmm17","xmm20","xmm21","xmm22","xmm23","xmm24","xmm25");
  if (mode == 2) for (long i = 0; i < n; ++i) __asm__ volatile(
    "vmovdqa64 (%0), %%zmm28\n vmovdqa64 64(%0), %%zmm27\n vmovdqa64 128(%0), %%zmm26\n vmovdqa64 192(%0), %%zmm19\n vmovdqa64 256(%0), %%zmm18\n vmovdqa64 320(%0), %%zmm29\n vmovdqa64 384(%0), %%zmm30\n"
    "vpdpbusd %%zmm30, %%zmm28, %%zmm0\n vpdpbusd %%zmm27, %%zmm28, %%zmm1\n vpdpbusd %%zmm26, %%zmm28, %%zmm2\n vpdpbusd %%zmm19, %%zmm28, %%zmm3\n"
    "vpdpbusd %%zmm30, %%zmm18, %%zmm4\n vpdpbusd %%zmm27, %%zmm18, %%zmm5\n vpdpbusd %%zmm26, %%zmm18, %%zmm6\n vpdpbusd %%zmm19, %%zmm18, %%zmm7\n"
    "vpdpbusd %%zmm30, %%zmm29, %%zmm8\n vpdpbusd %%zmm27, %%zmm29, %%zmm9\n vpdpbusd %%zmm26, %%zmm29, %%zmm10\n vpdpbusd %%zmm19, %%zmm29, %%zmm11\n"
    :: "r"(buf) : "xmm0","xmm1","xmm2","xmm3","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm18","xmm19","xmm26","xmm27","xmm28","xmm29","xmm30");
  auto t1 = std::chrono::steady_clock::now();
  double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
  std::printf("mode %d: %.2f G vpdpbusd/s\n", mode, n * 12 / ns);
  }
}
