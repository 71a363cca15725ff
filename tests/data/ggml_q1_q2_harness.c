// Quantizes float rows with ggml's own reference quantizers (quantize_row_q1_0_ref, quantize_row_q2_0_ref) and
// dequantizes them with ggml's own dequantizers, for make_tiny_q1_q2.py. Built against ggml/src/ggml-quants.c of
// llama.cpp (make_tiny_q1_q2.py says how); the four stubs stand in for ggml.c functions the reference code never
// calls on this path. Usage: harness q1_0|q2_0 rows cols in.f32 out.blocks out.f32
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#define GGML_COMMON_DECL_C
#include "ggml-common.h"
#include "ggml-quants.h"
void ggml_abort(const char * file, int line, const char * fmt, ...) { fprintf(stderr, "abort %s:%d\n", file, line); abort(); }
size_t ggml_row_size(enum ggml_type t, int64_t ne) { (void)t; (void)ne; abort(); }
const char * ggml_type_name(enum ggml_type t) { (void)t; return "?"; }
size_t ggml_type_size(enum ggml_type t) { (void)t; abort(); }
int main(int argc, char ** argv) {
  const int q1 = strcmp(argv[1], "q1_0") == 0;
  const long rows = atol(argv[2]), cols = atol(argv[3]);
  const long block_w = q1 ? QK1_0 : QK2_0, block_b = q1 ? sizeof(block_q1_0) : sizeof(block_q2_0);
  float * x = malloc(rows * cols * 4), * y = malloc(rows * cols * 4);
  unsigned char * b = malloc(rows * cols / block_w * block_b);
  FILE * f = fopen(argv[4], "rb"); fread(x, 4, rows * cols, f); fclose(f);
  for (long r = 0; r < rows; ++r) {
    void * row = b + r * cols / block_w * block_b;
    if (q1) { quantize_row_q1_0_ref(x + r * cols, row, cols); dequantize_row_q1_0(row, y + r * cols, cols); }
    else    { quantize_row_q2_0_ref(x + r * cols, row, cols); dequantize_row_q2_0(row, y + r * cols, cols); }
  }
  f = fopen(argv[5], "wb"); fwrite(b, 1, rows * cols / block_w * block_b, f); fclose(f);
  f = fopen(argv[6], "wb"); fwrite(y, 4, rows * cols, f); fclose(f);
  return 0;
}
