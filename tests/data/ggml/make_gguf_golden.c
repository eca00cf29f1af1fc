// Writes tests/data/ggml/golden.gguf with ggml's own GGUF writer (gguf_init_empty, gguf_set_val_*,
// gguf_set_arr_*, gguf_add_tensor, gguf_write_to_file), so that tests/io/test_gguf.cpp can check that
// quantkit reads what ggml writes, and writes the same bytes from the same metadata and tensors. One value
// of every GGUF type, arrays of every element type and of strings, general.alignment left to its default
// (32), and tensors of types F32, F16, Q8_0, Q4_0 and Q4_K whose quantized bytes are ggml's
// quantize_row_*_ref of fixed rows. See README.md here for the ggml commit. Build and run from the
// repository root, with ggml's base library built in $GGML_BUILD from a checkout in $GGML:
//
//   gcc -O2 -ffp-contract=off -std=c11 -I$GGML/include -I$GGML/src tests/data/ggml/make_gguf_golden.c
//       -L$GGML_BUILD/src -lggml-base -Wl,-rpath,$GGML_BUILD/src -lm -o /tmp/make_gguf_golden   (one line)
//   /tmp/make_gguf_golden tests/data/ggml/golden.gguf
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-quants.h"
#include "ggml.h"
#include "gguf.h"

// Deterministic values in [-1, 1): xorshift32 from a fixed seed.
static uint32_t state = 2463534242u;
static float next_value(void) {
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  return (float)(state >> 8) / 8388608.0f - 1.0f;
}

static void fill(float* x, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) x[i] = scale * next_value();
}

// A tensor of ne {ne0, ne1, ne2} (fewer dimensions when the last are 1) in ctx, added to gguf.
static struct ggml_tensor* new_tensor(struct ggml_context* ctx, struct gguf_context* gguf,
                                      enum ggml_type type, const char* name, int64_t ne0, int64_t ne1,
                                      int64_t ne2) {
  struct ggml_tensor* t = ne2 > 1   ? ggml_new_tensor_3d(ctx, type, ne0, ne1, ne2)
                          : ne1 > 1 ? ggml_new_tensor_2d(ctx, type, ne0, ne1)
                                    : ggml_new_tensor_1d(ctx, type, ne0);
  ggml_set_name(t, name);
  gguf_add_tensor(gguf, t);
  return t;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUT.gguf\n", argv[0]);
    return 2;
  }
  struct gguf_context* gguf = gguf_init_empty();

  gguf_set_val_str(gguf, "general.architecture", "golden");
  gguf_set_val_str(gguf, "general.name", "quantkit golden \xc3\xa9\xe2\x82\xac");  // UTF-8: e-acute, euro
  gguf_set_val_u8(gguf, "test.u8", 200);
  gguf_set_val_i8(gguf, "test.i8", -100);
  gguf_set_val_u16(gguf, "test.u16", 60000);
  gguf_set_val_i16(gguf, "test.i16", -30000);
  gguf_set_val_u32(gguf, "test.u32", 4000000000u);
  gguf_set_val_i32(gguf, "test.i32", -2000000000);
  gguf_set_val_f32(gguf, "test.f32", 0.1f);
  gguf_set_val_u64(gguf, "test.u64", 18000000000000000000ull);
  gguf_set_val_i64(gguf, "test.i64", -9000000000000000000ll);
  gguf_set_val_f64(gguf, "test.f64", -2.718281828459045);
  gguf_set_val_bool(gguf, "test.bool_true", true);
  gguf_set_val_bool(gguf, "test.bool_false", false);
  gguf_set_val_str(gguf, "test.empty_string", "");

  const uint8_t u8s[] = {0, 1, 255};
  const int8_t i8s[] = {-128, 0, 127};
  const uint16_t u16s[] = {0, 65535};
  const int16_t i16s[] = {-32768, 32767};
  const uint32_t u32s[] = {1, 2, 3, 4294967295u};
  const int32_t i32s[] = {-1, 0, 2147483647};
  const float f32s[] = {1.5f, -0.0f, 3.25e-5f};
  const uint64_t u64s[] = {0, 18446744073709551615ull};
  const int64_t i64s[] = {-1, 9223372036854775807ll};
  const double f64s[] = {1e300, -1e-300, 0.5};
  const bool bools[] = {true, false, true, true};
  const char* strs[] = {"alpha", "", "gamma \xce\xb3", "<s>"};
  gguf_set_arr_data(gguf, "test.arr_u8", GGUF_TYPE_UINT8, u8s, 3);
  gguf_set_arr_data(gguf, "test.arr_i8", GGUF_TYPE_INT8, i8s, 3);
  gguf_set_arr_data(gguf, "test.arr_u16", GGUF_TYPE_UINT16, u16s, 2);
  gguf_set_arr_data(gguf, "test.arr_i16", GGUF_TYPE_INT16, i16s, 2);
  gguf_set_arr_data(gguf, "test.arr_u32", GGUF_TYPE_UINT32, u32s, 4);
  gguf_set_arr_data(gguf, "test.arr_i32", GGUF_TYPE_INT32, i32s, 3);
  gguf_set_arr_data(gguf, "test.arr_f32", GGUF_TYPE_FLOAT32, f32s, 3);
  gguf_set_arr_data(gguf, "test.arr_u64", GGUF_TYPE_UINT64, u64s, 2);
  gguf_set_arr_data(gguf, "test.arr_i64", GGUF_TYPE_INT64, i64s, 2);
  gguf_set_arr_data(gguf, "test.arr_f64", GGUF_TYPE_FLOAT64, f64s, 3);
  gguf_set_arr_data(gguf, "test.arr_bool", GGUF_TYPE_BOOL, bools, 4);
  gguf_set_arr_data(gguf, "test.arr_empty_i32", GGUF_TYPE_INT32, i32s, 0);
  gguf_set_arr_str(gguf, "test.arr_str", strs, 4);

  struct ggml_init_params params = {.mem_size = 1 << 20, .mem_buffer = NULL, .no_alloc = false};
  struct ggml_context* ctx = ggml_init(params);
  float rows[2 * 256];
  // gguf_add_tensor keeps the tensor's data pointer; gguf_write_to_file reads the data filled in below.
  float* f32 = new_tensor(ctx, gguf, GGML_TYPE_F32, "f32.vector", 5, 1, 1)->data;
  fill(f32, 5, 1.0f);
  f32 = new_tensor(ctx, gguf, GGML_TYPE_F32, "f32.cube", 3, 2, 2)->data;
  fill(f32, 12, 10.0f);

  void* data = new_tensor(ctx, gguf, GGML_TYPE_F16, "f16.matrix", 4, 3, 1)->data;
  fill(rows, 12, 2.0f);
  ggml_fp32_to_fp16_row(rows, data, 12);

  data = new_tensor(ctx, gguf, GGML_TYPE_Q8_0, "blk.0.q8_0.weight", 64, 2, 1)->data;
  fill(rows, 128, 0.5f);
  quantize_row_q8_0_ref(rows, data, 128);

  data = new_tensor(ctx, gguf, GGML_TYPE_Q4_0, "blk.0.q4_0.weight", 32, 3, 1)->data;
  fill(rows, 96, 3.0f);
  quantize_row_q4_0_ref(rows, data, 96);

  data = new_tensor(ctx, gguf, GGML_TYPE_Q4_K, "blk.1.q4_K.weight", 256, 2, 1)->data;  // a super-block a row
  fill(rows, 512, 0.25f);
  quantize_row_q4_K_ref(rows, data, 512);

  if (!gguf_write_to_file(gguf, argv[1], false)) {
    fprintf(stderr, "gguf_write_to_file %s failed\n", argv[1]);
    return 1;
  }
  gguf_free(gguf);
  ggml_free(ctx);
  return 0;
}
