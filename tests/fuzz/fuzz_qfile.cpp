// libFuzzer target: the fuzz input is an in-memory quantized-tensor .npz (io/qfile.hpp; nothing touches
// the disk). Validating it, unpacking its codes and dequantizing it must either succeed or throw
// qk::Error: integer and codebook (FP8, NF4) files, packed codes, per-group parameters, input_scale, the
// meta JSON and its method record. The seed corpus (corpus/qfile) holds one valid file of each kind.
#include <cstddef>
#include <cstdint>
#include <span>

#include "quantkit/io/qfile.hpp"
#include "quantkit/files/quantize_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const qk::io::QuantizedFile file =
        qk::io::read_quantized_bytes(std::as_bytes(std::span(data, size)), "fuzz.npz");
    (void)qk::io::unpack_codes(file);
    (void)qk::dequantize_to_float(file);
  } catch (const qk::Error&) {
  }
  return 0;
}
