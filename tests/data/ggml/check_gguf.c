// Loads a GGUF file the way llama.cpp's loader does (ggml's gguf_init_from_file with no_alloc = false and
// a ggml context, so every tensor's data is read and the file validated) and prints what ggml sees: the
// version, every key with its type and value, and per tensor its name, type, ne and a checksum of ggml's
// own dequantization (ggml_get_type_traits(type)->to_float): the sum and the sum of squares in double and
// the first 4 values. Used to check that the files qtool writes are files ggml reads, with the values
// quantkit means. Build from the repository root like make_gguf_golden.c:
//
//   gcc -O2 -std=c11 -I$GGML/include tests/data/ggml/check_gguf.c -L$GGML_BUILD/src -lggml-base
//       -Wl,-rpath,$GGML_BUILD/src -lm -o /tmp/check_gguf   (one line)
//   /tmp/check_gguf model.gguf        (exit status 1 when ggml refuses the file)
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "gguf.h"

static void print_element(enum gguf_type type, const void* data, size_t i) {
  switch (type) {
    case GGUF_TYPE_UINT8:
      printf("%u", ((const uint8_t*)data)[i]);
      break;
    case GGUF_TYPE_INT8:
      printf("%d", ((const int8_t*)data)[i]);
      break;
    case GGUF_TYPE_UINT16:
      printf("%u", ((const uint16_t*)data)[i]);
      break;
    case GGUF_TYPE_INT16:
      printf("%d", ((const int16_t*)data)[i]);
      break;
    case GGUF_TYPE_UINT32:
      printf("%" PRIu32, ((const uint32_t*)data)[i]);
      break;
    case GGUF_TYPE_INT32:
      printf("%" PRId32, ((const int32_t*)data)[i]);
      break;
    case GGUF_TYPE_FLOAT32:
      printf("%.9g", ((const float*)data)[i]);
      break;
    case GGUF_TYPE_UINT64:
      printf("%" PRIu64, ((const uint64_t*)data)[i]);
      break;
    case GGUF_TYPE_INT64:
      printf("%" PRId64, ((const int64_t*)data)[i]);
      break;
    case GGUF_TYPE_FLOAT64:
      printf("%.17g", ((const double*)data)[i]);
      break;
    case GGUF_TYPE_BOOL:
      printf("%s", ((const int8_t*)data)[i] ? "true" : "false");
      break;
    default:
      printf("?");
      break;
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE.gguf\n", argv[0]);
    return 2;
  }
  struct ggml_context* ctx = NULL;
  struct gguf_init_params params = {.no_alloc = false, .ctx = &ctx};
  struct gguf_context* gguf = gguf_init_from_file(argv[1], params);
  if (gguf == NULL) {
    printf("ggml refused %s\n", argv[1]);
    return 1;
  }
  printf("version %" PRIu32 " alignment %zu data_offset %zu\n", gguf_get_version(gguf),
         gguf_get_alignment(gguf), gguf_get_data_offset(gguf));

  const int64_t n_kv = gguf_get_n_kv(gguf);
  for (int64_t k = 0; k < n_kv; ++k) {
    const enum gguf_type type = gguf_get_kv_type(gguf, k);
    printf("kv %s %s ", gguf_get_key(gguf, k), gguf_type_name(type));
    if (type == GGUF_TYPE_STRING) {
      printf("\"%s\"", gguf_get_val_str(gguf, k));
    } else if (type == GGUF_TYPE_ARRAY) {
      const enum gguf_type element = gguf_get_arr_type(gguf, k);
      const size_t n = gguf_get_arr_n(gguf, k);
      printf("%s[%zu] [", gguf_type_name(element), n);
      for (size_t i = 0; i < n && i < 8; ++i) {
        if (i > 0) printf(", ");
        if (element == GGUF_TYPE_STRING) {
          printf("\"%s\"", gguf_get_arr_str(gguf, k, i));
        } else {
          print_element(element, gguf_get_arr_data(gguf, k), i);
        }
      }
      printf(n > 8 ? ", ...]" : "]");
    } else {
      print_element(type, gguf_get_val_data(gguf, k), 0);
    }
    printf("\n");
  }

  const int64_t n_tensors = gguf_get_n_tensors(gguf);
  for (int64_t i = 0; i < n_tensors; ++i) {
    const char* name = gguf_get_tensor_name(gguf, i);
    const struct ggml_tensor* t = ggml_get_tensor(ctx, name);
    const int64_t n = ggml_nelements(t);
    float* values = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (t->type == GGML_TYPE_F32) {
      memcpy(values, t->data, sizeof(float) * (size_t)n);
    } else {
      const struct ggml_type_traits* traits = ggml_get_type_traits(t->type);
      if (traits->to_float == NULL) {
        printf("tensor %s %s: ggml has no to_float\n", name, ggml_type_name(t->type));
        free(values);
        continue;
      }
      traits->to_float(t->data, values, n);
    }
    double sum = 0.0, sum_squares = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      sum += values[j];
      sum_squares += (double)values[j] * values[j];
    }
    printf("tensor %s %s ne [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
           "] offset %zu sum %.17g sumsq %.17g first",
           name, ggml_type_name(t->type), t->ne[0], t->ne[1], t->ne[2], t->ne[3],
           gguf_get_tensor_offset(gguf, i), sum, sum_squares);
    for (int64_t j = 0; j < n && j < 4; ++j) printf(" %.9g", values[j]);
    printf("\n");
    free(values);
  }
  gguf_free(gguf);
  ggml_free(ctx);
  return 0;
}
