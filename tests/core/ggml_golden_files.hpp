// Reading the ggml golden data of tests/data/ggml (written by ggml's own code; see its README.md), shared by
// test_ggml_blocks.cpp and test_ggml_imatrix.cpp.
#pragma once

#include <cstddef>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace qk::ggml::test {

inline std::vector<std::byte> read_golden(const std::string& name) {
  const std::string path = std::string(QK_TEST_DATA_DIR) + "/ggml/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

inline std::vector<float> read_golden_floats(const std::string& name) {
  const std::vector<std::byte> bytes = read_golden(name);
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

}  // namespace qk::ggml::test
