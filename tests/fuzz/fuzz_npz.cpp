// libFuzzer target: the fuzz input is an in-memory .npz (nothing touches the disk). Reading it and its
// members must either succeed or throw qk::Error.
#include <cstddef>
#include <cstdint>
#include <span>

#include "quantkit/io/npz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto arrays = qk::io::read_npz_bytes(std::as_bytes(std::span(data, size)), "fuzz.npz");
    for (const auto& [name, array] : arrays) {
      if (array.dtype() == qk::io::DType::kUnicode) {
        (void)array.as_string();
      } else {
        (void)array.to_vector<float>();
      }
    }
  } catch (const qk::Error&) {
  }
  return 0;
}
