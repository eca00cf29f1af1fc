// libFuzzer target: the fuzz input is an in-memory safetensors file (io/safetensors.hpp; nothing touches
// the disk). Validating it and converting its floating tensors to float32 must either succeed or throw
// qk::Error. The seed corpus (corpus/safetensors) holds valid files: every dtype with metadata, no
// tensors, a zero-size tensor.
#include <cstddef>
#include <cstdint>
#include <span>

#include "quantkit/core/error.hpp"
#include "quantkit/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const qk::io::SafetensorsFile file =
        qk::io::SafetensorsFile::parse(std::as_bytes(std::span(data, size)), "fuzz.safetensors");
    for (const qk::io::StTensor& t : file.tensors())
      if (qk::io::st_dtype_is_float(t.dtype)) (void)qk::io::st_to_float(t);
  } catch (const qk::Error&) {
  }
  return 0;
}
