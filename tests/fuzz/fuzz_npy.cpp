// libFuzzer target: the fuzz input is an in-memory .npy. Parsing and converting it must either succeed
// or throw qk::Error; a parsed array re-encoded must parse back to the same bytes, and text that is
// valid UTF-8 must come back from encode_npy_string unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "quantkit/io/npy.hpp"

namespace {

void exercise(const qk::io::NpyArray& array) {
  if (array.dtype() == qk::io::DType::kUnicode) {
    try {
      (void)array.as_string();
    } catch (const qk::Error&) {
    }
    return;
  }
  (void)array.to_vector<float>();
  (void)array.to_vector<qk::half>();
  (void)array.to_vector<std::int64_t>();
  (void)array.to_vector<std::uint8_t>();
  (void)array.to_vector<bool>();
  if (array.is_native_c_order()) {
    // What we can view in place, we can write; and what we write, we read back unchanged.
    const qk::io::NpyArray again =
        qk::io::parse_npy(qk::io::encode_npy(array.dtype(), array.shape(), array.raw()), "again");
    if (again.shape() != array.shape() || again.raw().size() != array.raw().size() ||
        (!array.raw().empty() &&
         std::memcmp(again.raw().data(), array.raw().data(), array.raw().size()) != 0)) {
      std::abort();
    }
  }
}

// The input as text: valid UTF-8 must survive encode_npy_string and as_string unchanged.
void string_round_trip(const std::string& text) {
  std::vector<std::byte> npy;
  try {
    npy = qk::io::encode_npy_string(text);
  } catch (const qk::Error&) {
    return;  // not valid UTF-8
  }
  const std::string back = qk::io::parse_npy(std::move(npy), "text.npy").as_string();
  // numpy drops trailing NULs of a string; so does as_string.
  std::string want = text;
  while (!want.empty() && want.back() == '\0') want.pop_back();
  if (back != want) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* begin = reinterpret_cast<const std::byte*>(data);
  try {
    exercise(qk::io::parse_npy(std::vector<std::byte>(begin, begin + size), "fuzz.npy"));
  } catch (const qk::Error&) {
  }
  string_round_trip(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
