// Writes the golden files of tests/core/test_ggml_blocks.cpp with ggml's own reference code: the input rows,
// what quantize_row_<type>_ref makes of them, what dequantize_row_<type> makes of those bytes, and the
// dequantization of random blocks (every bit pattern of the scale fields, not only the ones a quantizer
// makes). See README.md here for the ggml commit. Build and run from the repository root, with a ggml
// checkout (github.com/ggml-org/ggml) in $GGML:
//
//   gcc -O2 -ffp-contract=off -DNDEBUG -std=c11 -I$GGML/include -I$GGML/src -I$GGML/src/ggml-cpu
//       tests/data/ggml/make_golden.c $GGML/src/ggml-quants.c -lm -o /tmp/make_golden   (one line)
//   /tmp/make_golden examples/data/silero_vad_v5_16k tests/data/ggml
//
// -ffp-contract=off: the references are written as separate float multiplies and adds, and quantkit keeps
// them separate; a build that fuses them (-march with FMA) rounds differently. -DNDEBUG: nearest_int's
// assert would stop the tiny-value row, whose scale inverse overflows (the bytes are still ggml's).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-quants.h"
#include "ggml-impl.h"

// ggml-quants.c refers to these from ggml.c; the functions used here never call them.
void ggml_abort(const char* file, int line, const char* fmt, ...) {
  fprintf(stderr, "ggml_abort %s:%d %s\n", file, line, fmt);
  abort();
}
size_t ggml_row_size(enum ggml_type type, int64_t ne) { (void)type; (void)ne; abort(); }
const char* ggml_type_name(enum ggml_type type) { (void)type; abort(); }
size_t ggml_type_size(enum ggml_type type) { (void)type; abort(); }

enum { kRow = 256, kMaxRows = 16, kRandomRows = 4 };

static float rows[kMaxRows][kRow];
static const char* row_names[kMaxRows];
static int row_count = 0;

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) {  // xorshift64*
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)((next_u32() >> 8) * (1.0 / 16777216.0)); }
static float normal(void) {
  const double u1 = ((next_u32() >> 8) + 1) * (1.0 / 16777217.0), u2 = (next_u32() >> 8) * (1.0 / 16777216.0);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static float* add_row(const char* name) {
  row_names[row_count] = name;
  return rows[row_count++];
}

// 256 float32 weights of a little-endian .npy (format 1.0, float32) from element `offset`.
static void read_npy_row(const char* dir, const char* file, long offset, float* out) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE* f = fopen(path, "rb");
  unsigned char head[10];
  if (!f || fread(head, 1, 10, f) != 10) { fprintf(stderr, "cannot read %s\n", path); exit(1); }
  const long header = 10 + (head[8] | (head[9] << 8));
  if (fseek(f, header + 4 * offset, SEEK_SET) != 0 || fread(out, 4, kRow, f) != kRow) {
    fprintf(stderr, "short %s\n", path);
    exit(1);
  }
  fclose(f);
}

static void make_rows(const char* weights_dir) {
  float* r;
  r = add_row("zero");
  for (int i = 0; i < kRow; ++i) r[i] = 0.0f;
  r = add_row("constant");  // positive constant in the first half, negative in the second
  for (int i = 0; i < kRow; ++i) r[i] = i < kRow / 2 ? 0.75f : -1.3f;
  r = add_row("outlier");
  for (int i = 0; i < kRow; ++i) r[i] = 0.01f * normal();
  r[77] = 10.0f;
  r[200] = -6.5f;
  // Blocks of 32 whose scale is exactly 1 (or 0.5, or -1), values on the .5 ties of the code grid.
  r = add_row("ties");
  for (int j = 0; j < 32; ++j) r[j] = j == 0 ? 127.0f : (float)(j - 16) + 0.5f;          // q8_0: d = 1
  for (int j = 0; j < 32; ++j) r[32 + j] = j == 0 ? -8.0f : (float)(j % 16 - 8) + 0.5f;  // q4_0: d = 1
  for (int j = 0; j < 32; ++j) r[64 + j] = j == 0 ? 0.0f : j == 1 ? 15.0f : (float)(j % 15) + 0.5f;  // q4_1
  for (int j = 0; j < 32; ++j) r[96 + j] = j == 0 ? -16.0f : (float)(j - 16) + 0.5f;     // q5_0: d = 1
  for (int j = 0; j < 32; ++j) r[128 + j] = j == 0 ? 0.0f : j == 1 ? 31.0f : (float)(j % 31) + 0.5f;  // q5_1
  for (int j = 0; j < 32; ++j) r[160 + j] = j == 0 ? 63.5f : 0.25f * (float)(2 * j - 31);  // q8_0: d = 0.5
  for (int j = 0; j < 32; ++j) r[192 + j] = j == 0 ? 8.0f : (float)(j % 16 - 8) + 0.5f;    // q4_0: d = -1
  for (int j = 0; j < 32; ++j) r[224 + j] = 0.125f * (float)(j - 16);
  // The sign rule: the first value of largest magnitude sets the sign of d.
  r = add_row("plus_minus_max");
  for (int i = 0; i < kRow; ++i) r[i] = uniform(-1.0f, 1.0f);
  r[0] = 3.0f, r[5] = -3.0f;
  r[32] = -3.0f, r[40] = 3.0f;
  for (int j = 64; j < 96; ++j) r[j] = (j & 1) ? 65504.0f : -65504.0f;
  for (int j = 96; j < 128; ++j) r[j] = (j & 1) ? -1.0e5f : uniform(-1.0e5f, 1.0e5f);
  r = add_row("negative");
  for (int i = 0; i < kRow; ++i) r[i] = uniform(-2.0f, -0.1f);
  // Below half's range: d rounds to a half subnormal, or to 0 while the codes are not 0; the last blocks'
  // scale inverse overflows to inf (the codes are then what x86 makes of inf and NaN: 0).
  r = add_row("tiny");
  for (int i = 0; i < kRow; ++i) {
    const float unit = i < 64 ? 1e-6f : i < 128 ? 1e-9f : i < 192 ? 1e-30f : 1e-39f;
    r[i] = unit * normal();
  }
  r = add_row("normal_a");
  for (int i = 0; i < kRow; ++i) r[i] = normal();
  r = add_row("normal_b");
  for (int i = 0; i < kRow; ++i) r[i] = 0.02f * normal();
  r = add_row("uniform");
  for (int i = 0; i < kRow; ++i) r[i] = uniform(-5.0f, 3.0f);
  read_npy_row(weights_dir, "encoder.0.weight.npy", 0, add_row("silero_encoder0"));
  read_npy_row(weights_dir, "encoder.3.weight.npy", 4096, add_row("silero_encoder3"));
  read_npy_row(weights_dir, "decoder.lstm.ih.weight.npy", 8192, add_row("silero_lstm_ih"));
}

typedef void (*QuantizeFn)(const float*, void*, int64_t);
typedef void (*DequantizeFn)(const void*, float*, int64_t);
// Sets a block's half fields to finite values (random bytes there would give NaN and Inf scales).
typedef void (*FixHalves)(void*);

#define HALF(v) GGML_FP32_TO_FP16(v)
static void fix_d(void* b) { ((block_q4_0*)b)->d = HALF(uniform(-2.0f, 2.0f)); }
static void fix_dm_q4_1(void* b) { ((block_q4_1*)b)->d = HALF(uniform(0.0f, 0.5f)); ((block_q4_1*)b)->m = HALF(uniform(-2.0f, 2.0f)); }
static void fix_d_q5_0(void* b) { ((block_q5_0*)b)->d = HALF(uniform(-2.0f, 2.0f)); }
static void fix_dm_q5_1(void* b) { ((block_q5_1*)b)->d = HALF(uniform(0.0f, 0.5f)); ((block_q5_1*)b)->m = HALF(uniform(-2.0f, 2.0f)); }
static void fix_d_q8_0(void* b) { ((block_q8_0*)b)->d = HALF(uniform(-0.1f, 0.1f)); }
static void fix_q2_K(void* b) { ((block_q2_K*)b)->d = HALF(uniform(0.0f, 0.1f)); ((block_q2_K*)b)->dmin = HALF(uniform(-0.1f, 0.1f)); }
static void fix_q3_K(void* b) { ((block_q3_K*)b)->d = HALF(uniform(-0.1f, 0.1f)); }
static void fix_q4_K(void* b) { ((block_q4_K*)b)->d = HALF(uniform(0.0f, 0.1f)); ((block_q4_K*)b)->dmin = HALF(uniform(-0.1f, 0.1f)); }
static void fix_q5_K(void* b) { ((block_q5_K*)b)->d = HALF(uniform(0.0f, 0.1f)); ((block_q5_K*)b)->dmin = HALF(uniform(-0.1f, 0.1f)); }
static void fix_q6_K(void* b) { ((block_q6_K*)b)->d = HALF(uniform(-0.01f, 0.01f)); }

struct Type {
  const char* name;
  int block_weights;
  int block_bytes;
  QuantizeFn quantize;
  DequantizeFn dequantize;
  FixHalves fix;
};

#define TYPE(name, qk, block, fix) \
  { #name, qk, sizeof(block), (QuantizeFn)quantize_row_##name##_ref, (DequantizeFn)dequantize_row_##name, fix }
static const struct Type types[] = {
    TYPE(q4_0, QK4_0, block_q4_0, fix_d),      TYPE(q4_1, QK4_1, block_q4_1, fix_dm_q4_1),
    TYPE(q5_0, QK5_0, block_q5_0, fix_d_q5_0), TYPE(q5_1, QK5_1, block_q5_1, fix_dm_q5_1),
    TYPE(q8_0, QK8_0, block_q8_0, fix_d_q8_0), TYPE(q2_K, QK_K, block_q2_K, fix_q2_K),
    TYPE(q3_K, QK_K, block_q3_K, fix_q3_K),    TYPE(q4_K, QK_K, block_q4_K, fix_q4_K),
    TYPE(q5_K, QK_K, block_q5_K, fix_q5_K),    TYPE(q6_K, QK_K, block_q6_K, fix_q6_K),
};

static void write_file(const char* dir, const char* name, const char* suffix, const void* data, size_t bytes) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s%s", dir, name, suffix);
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) { fprintf(stderr, "cannot write %s\n", path); exit(1); }
}

int main(int argc, char** argv) {
  if (argc != 3) { fprintf(stderr, "usage: make_golden WEIGHTS_DIR OUT_DIR\n"); return 2; }
  const char* out = argv[2];
  make_rows(argv[1]);
  write_file(out, "inputs", ".f32", rows, sizeof(float) * kRow * row_count);

  static unsigned char blocks[kMaxRows * kRow * 2];
  static float values[kMaxRows][kRow];
  for (size_t t = 0; t < sizeof types / sizeof types[0]; ++t) {
    const struct Type* ty = &types[t];
    const size_t row_bytes = (size_t)(kRow / ty->block_weights) * ty->block_bytes;
    for (int r = 0; r < row_count; ++r) {
      ty->quantize(rows[r], blocks + r * row_bytes, kRow);
      ty->dequantize(blocks + r * row_bytes, values[r], kRow);
    }
    write_file(out, ty->name, ".quant.bin", blocks, row_bytes * row_count);
    write_file(out, ty->name, ".dequant.f32", values, sizeof(float) * kRow * row_count);

    for (size_t i = 0; i < row_bytes * kRandomRows; ++i) blocks[i] = (unsigned char)next_u32();
    for (size_t b = 0; b < (size_t)kRandomRows * kRow / ty->block_weights; ++b) ty->fix(blocks + b * ty->block_bytes);
    for (int r = 0; r < kRandomRows; ++r) ty->dequantize(blocks + r * row_bytes, values[r], kRow);
    write_file(out, ty->name, ".random.bin", blocks, row_bytes * kRandomRows);
    write_file(out, ty->name, ".random_dequant.f32", values, sizeof(float) * kRow * kRandomRows);
  }

  char path[1024];
  snprintf(path, sizeof path, "%s/rows.txt", out);
  FILE* f = fopen(path, "w");
  for (int r = 0; r < row_count; ++r) fprintf(f, "%s\n", row_names[r]);
  fclose(f);
  return 0;
}
