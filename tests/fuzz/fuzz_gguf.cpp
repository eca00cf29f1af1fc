// libFuzzer target: the fuzz input is an in-memory GGUF file (io/gguf.hpp; nothing touches the disk).
// Validating it and summarising every metadata value must either succeed or throw qk::Error, and every
// tensor's data must lie inside the input. The seed corpus (corpus/gguf) holds valid files: every
// metadata type with arrays of arrays and three tensor types, an empty file, a 64-byte alignment.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "quantkit/core/error.hpp"
#include "quantkit/io/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  try {
    const qk::io::GgufFile file = qk::io::GgufFile::parse(bytes, "fuzz.gguf");
    for (const auto& [key, value] : file.metadata()) (void)value.summary();
    for (const qk::io::GgufTensor& t : file.tensors()) {
      if (!t.data.empty() &&
          (t.data.data() < bytes.data() || t.data.data() + t.data.size() > bytes.data() + size))
        std::abort();  // a tensor outside the file: the reader's checks failed
      (void)t.shape();
    }
  } catch (const qk::Error&) {
  }
  return 0;
}
