// Writes the importance-weighted (imatrix) golden files of tests/core/test_ggml_imatrix.cpp with ggml's own
// code: what llama.cpp's `--imatrix` path, ggml_quantize_chunk -> quantize_<type>(src, dst, nrow, n_per_row,
// imatrix), makes of the rows of inputs.f32 (written by make_golden.c), for a fixed importance vector. See
// README.md here for the ggml commit. Build and run from the repository root, with a ggml checkout
// (github.com/ggml-org/ggml) in $GGML:
//
//   gcc -O2 -ffp-contract=off -DNDEBUG -std=c11 -I$GGML/include -I$GGML/src -I$GGML/src/ggml-cpu
//       tests/data/ggml/make_golden_imatrix.c $GGML/src/ggml-quants.c -lm -o /tmp/make_golden_imatrix
//   /tmp/make_golden_imatrix tests/data/ggml        (the gcc command is one line)
//
// Flags as make_golden.c: -ffp-contract=off keeps ggml's multiplies and adds separate, as quantkit does;
// -DNDEBUG drops nearest_int's range assert, which the tiny row (scale inverses that overflow) would stop.
//
// Files written (little-endian):
//   imatrix.f32                 the importance vector of 256 float32 (make_importance below)
//   <type>.imatrix.bin          quantize_<type>(inputs, out, 13, 256, imatrix)
//   <type>.imatrix_ones.bin     quantize_<type>(inputs, out, 13, 256, 256 ones)
//   <type>.imatrix512.bin       quantize_<type>(first 12 input rows as 6 rows of 512, out, 6, 512, imp512),
//                               imp512[j] = imatrix[j] for j < 256, imatrix[511 - j] for j >= 256
// for type in q4_0 q4_1 q5_0 q5_1 q8_0 q2_K q3_K q4_K q5_K q6_K (q8_0 ignores the importance).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-quants.h"
#include "ggml-impl.h"

// ggml-quants.c refers to these from ggml.c; quantize_<type> calls ggml_row_size, the others are unused.
void ggml_abort(const char* file, int line, const char* fmt, ...) {
  fprintf(stderr, "ggml_abort %s:%d %s\n", file, line, fmt);
  abort();
}
size_t ggml_row_size(enum ggml_type type, int64_t ne) {
  switch (type) {
    case GGML_TYPE_Q4_0: return ne / QK4_0 * sizeof(block_q4_0);
    case GGML_TYPE_Q4_1: return ne / QK4_1 * sizeof(block_q4_1);
    case GGML_TYPE_Q5_0: return ne / QK5_0 * sizeof(block_q5_0);
    case GGML_TYPE_Q5_1: return ne / QK5_1 * sizeof(block_q5_1);
    case GGML_TYPE_Q8_0: return ne / QK8_0 * sizeof(block_q8_0);
    case GGML_TYPE_Q2_K: return ne / QK_K * sizeof(block_q2_K);
    case GGML_TYPE_Q3_K: return ne / QK_K * sizeof(block_q3_K);
    case GGML_TYPE_Q4_K: return ne / QK_K * sizeof(block_q4_K);
    case GGML_TYPE_Q5_K: return ne / QK_K * sizeof(block_q5_K);
    case GGML_TYPE_Q6_K: return ne / QK_K * sizeof(block_q6_K);
    default: abort();
  }
}
const char* ggml_type_name(enum ggml_type type) { (void)type; abort(); }
size_t ggml_type_size(enum ggml_type type) { (void)type; abort(); }

enum { kRow = 256, kRows = 13 };

// The importance vector: mostly (1 + u) * 2^e with u in [0, 1) and e in -14..9 (6.1e-5 .. 1024) from a
// fixed-seed xorshift32 (exact arithmetic, so any compiler rebuilds it to the bit),
// with columns that are exactly 0 (every 23rd, and all of 96..127: two whole Q2_K/Q3_K/Q6_K groups of 16,
// a whole Q4_K/Q5_K group and a whole Q4_0..Q5_1 block of 32 with weight 0), tiny (1e-12: j % 37 == 5)
// and large (1e4: j % 41 == 7). Checked in test_ggml_imatrix.cpp, which rebuilds it.
static void make_importance(float* imp) {
  uint32_t s = 0x1234567u;
  for (int j = 0; j < kRow; ++j) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    const float u = (float)(s >> 8) * (1.0f / 16777216.0f);  // [0, 1), exact
    imp[j] = ldexpf(1.0f + u, (int)(s % 24) - 14);
    if (j % 37 == 5) imp[j] = 1e-12f;
    if (j % 41 == 7) imp[j] = 1e4f;
    if (j % 23 == 0 || (j >= 96 && j < 128)) imp[j] = 0.0f;
  }
}

typedef size_t (*QuantizeFn)(const float*, void*, int64_t, int64_t, const float*);
struct Type {
  const char* name;
  enum ggml_type type;
  QuantizeFn quantize;
};
#define TYPE(name, id) {#name, id, quantize_##name}
static const struct Type types[] = {
    TYPE(q4_0, GGML_TYPE_Q4_0), TYPE(q4_1, GGML_TYPE_Q4_1), TYPE(q5_0, GGML_TYPE_Q5_0),
    TYPE(q5_1, GGML_TYPE_Q5_1), TYPE(q8_0, GGML_TYPE_Q8_0), TYPE(q2_K, GGML_TYPE_Q2_K),
    TYPE(q3_K, GGML_TYPE_Q3_K), TYPE(q4_K, GGML_TYPE_Q4_K), TYPE(q5_K, GGML_TYPE_Q5_K),
    TYPE(q6_K, GGML_TYPE_Q6_K),
};

static void write_file(const char* dir, const char* name, const char* suffix, const void* data, size_t bytes) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s%s", dir, name, suffix);
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) { fprintf(stderr, "cannot write %s\n", path); exit(1); }
}

int main(int argc, char** argv) {
  if (argc != 2) { fprintf(stderr, "usage: make_golden_imatrix DATA_DIR\n"); return 2; }
  const char* dir = argv[1];
  static float rows[kRows * kRow];
  char path[1024];
  snprintf(path, sizeof path, "%s/inputs.f32", dir);
  FILE* f = fopen(path, "rb");
  if (!f || fread(rows, sizeof(float), kRows * kRow, f) != kRows * kRow) { fprintf(stderr, "cannot read %s\n", path); return 1; }
  fclose(f);

  static float imp[kRow], ones[kRow], imp512[2 * kRow];
  make_importance(imp);
  for (int j = 0; j < kRow; ++j) ones[j] = 1.0f;
  for (int j = 0; j < 2 * kRow; ++j) imp512[j] = j < kRow ? imp[j] : imp[2 * kRow - 1 - j];
  write_file(dir, "imatrix", ".f32", imp, sizeof imp);

  static unsigned char out[kRows * kRow * 2];
  for (size_t t = 0; t < sizeof types / sizeof types[0]; ++t) {
    const struct Type* ty = &types[t];
    size_t bytes = ty->quantize(rows, out, kRows, kRow, imp);
    write_file(dir, ty->name, ".imatrix.bin", out, bytes);
    bytes = ty->quantize(rows, out, kRows, kRow, ones);
    write_file(dir, ty->name, ".imatrix_ones.bin", out, bytes);
    bytes = ty->quantize(rows, out, (kRows - 1) / 2, 2 * kRow, imp512);
    write_file(dir, ty->name, ".imatrix512.bin", out, bytes);
  }
  return 0;
}
