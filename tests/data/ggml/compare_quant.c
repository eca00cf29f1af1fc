// Checks a quantized GGUF file byte for byte against ggml's own quantizer: for every tensor of Q.gguf whose
// type is not f32, the tensor of the same name in F32.gguf (its f32 source) is quantized with ggml's
// ggml_quantize_chunk (no importance matrix: quantize_row_<type>_ref for q4_0 .. q8_0, ggml's conversion
// for f16 and bf16) and compared with the bytes in Q.gguf. Build like check_gguf.c:
//
//   gcc -O2 -ffp-contract=off -std=c11 -I$GGML/include tests/data/ggml/compare_quant.c -L$GGML_BUILD/src
//       -lggml-base -Wl,-rpath,$GGML_BUILD/src -lm -o /tmp/compare_quant   (one line)
//   /tmp/compare_quant F32.gguf Q.gguf        (exit status 1 on any difference)
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "gguf.h"

static struct gguf_context* load(const char* path, struct ggml_context** ctx) {
  struct gguf_init_params params = {.no_alloc = false, .ctx = ctx};
  struct gguf_context* gguf = gguf_init_from_file(path, params);
  if (gguf == NULL) {
    printf("ggml refused %s\n", path);
    exit(1);
  }
  return gguf;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s F32.gguf Q.gguf\n", argv[0]);
    return 2;
  }
  struct ggml_context* source_ctx = NULL;
  struct ggml_context* quant_ctx = NULL;
  struct gguf_context* source = load(argv[1], &source_ctx);
  struct gguf_context* quant = load(argv[2], &quant_ctx);
  int compared = 0, differ = 0;
  for (int64_t i = 0; i < gguf_get_n_tensors(quant); ++i) {
    const char* name = gguf_get_tensor_name(quant, i);
    const struct ggml_tensor* q = ggml_get_tensor(quant_ctx, name);
    const struct ggml_tensor* f = ggml_get_tensor(source_ctx, name);
    if (q->type == GGML_TYPE_F32) continue;
    if (f == NULL || f->type != GGML_TYPE_F32 || ggml_nelements(f) != ggml_nelements(q)) {
      printf("%s: no f32 source of the same size in %s\n", name, argv[1]);
      ++differ;
      continue;
    }
    const int64_t n_per_row = q->ne[0];
    const int64_t rows = ggml_nelements(q) / n_per_row;
    const size_t bytes = ggml_nbytes(q);
    void* expected = malloc(bytes);
    const size_t written =
        ggml_quantize_chunk(q->type, (const float*)f->data, expected, 0, rows, n_per_row, NULL);
    const int same = written == bytes && memcmp(expected, q->data, bytes) == 0;
    printf("%s %s %zu bytes: %s\n", name, ggml_type_name(q->type), bytes, same ? "identical" : "DIFFERENT");
    ++compared;
    differ += !same;
    free(expected);
  }
  printf("%d tensor(s) compared, %d different\n", compared, differ);
  ggml_quantize_free();
  gguf_free(source);
  gguf_free(quant);
  ggml_free(source_ctx);
  ggml_free(quant_ctx);
  return differ == 0 ? 0 : 1;
}
