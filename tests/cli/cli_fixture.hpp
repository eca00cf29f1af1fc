// The fixture of the qtool command-line tests (test_cli_*.cpp): the real binary run as a child process
// in a scratch folder per test, standard inputs, and checks that a failure is clean: exit code 1, one
// "qtool: error: " line naming the file and the problem, no output created, an existing output left
// byte-for-byte as it was and no temporary file left behind.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_test_util.hpp"
#include "quantkit/core/tensor_view.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"

namespace qk::cli_test {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::HasSubstr;
using testing::StartsWith;

inline const std::string kPrevious = "an output file that was here before the run\n";

inline std::string joined(const std::vector<std::string>& args) {
  std::string s = "qtool";
  for (const auto& a : args) s += " " + a;
  return s;
}

// Values with a different range per row, so per-channel and per-group parameters differ.
inline std::vector<float> weights(std::int64_t rows, std::int64_t cols) {
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      v[static_cast<std::size_t>(r * cols + c)] =
          0.25f * static_cast<float>(r + 1) *
          std::sin(0.37f * static_cast<float>(r * cols + c) + static_cast<float>(r));
    }
  }
  return v;
}

template <class T>
std::string npy_of(const std::string& descr, const Shape& shape, const std::vector<T>& values) {
  return npy_bytes(npy_dict(descr, shape_string(shape)), bytes_of(values));
}

// Rounding to the nearest code is off by at most scale / 2; in float32, x * (1 / scale) rounds twice and
// (q - zero_point) * scale once, each by at most 2^-24 of |x|, so 2^-22 |x| covers all three.
inline void expect_within_half_step(float x, float dequantized, float scale, std::size_t i) {
  EXPECT_LE(std::fabs(x - dequantized), 0.5f * scale + std::ldexp(std::fabs(x), -22)) << "element " << i;
}

class Cli : public testing::Test {
 protected:
  ProcessResult qtool(const std::vector<std::string>& args) const {
    return run_qtool(args, folder_.path().string());
  }
  fs::path path(const std::string& name) const { return folder_.path() / name; }
  void write(const std::string& name, const std::string& bytes) const { write_file(path(name), bytes); }

  // The standard input: float32 weights of shape (4, 64) in w.npy.
  void write_weights(const std::string& name = "w.npy") const {
    write(name, npy_of("<f4", {4, 64}, weights(4, 64)));
  }

  // Runs qtool and requires success.
  ProcessResult ok(const std::vector<std::string>& args) const {
    ProcessResult r = qtool(args);
    EXPECT_EQ(r.exit_code, 0) << joined(args) << "\nstderr: " << r.err;
    EXPECT_EQ(r.err, "") << joined(args);
    EXPECT_THAT(temp_files(folder_.path()), testing::IsEmpty());
    return r;
  }

  // One line on stderr, "qtool: error: ", naming file (skipped when empty) and saying phrase; nothing on
  // stdout.
  static void expect_error_line(const ProcessResult& r, const std::string& file, const std::string& phrase) {
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_THAT(r.err, StartsWith("qtool: error: "));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.err.ends_with("\n")) << r.err;
    if (!file.empty()) EXPECT_THAT(r.err, HasSubstr(file));
    EXPECT_THAT(r.err, HasSubstr(phrase));
  }

  void expect_folder_unchanged(const std::map<std::string, std::string>& before) const {
    const auto after = snapshot(folder_.path());
    for (const auto& [name, contents] : after) {
      const auto it = before.find(name);
      if (it == before.end()) {
        ADD_FAILURE() << "the run created " << name;
      } else if (it->second != contents) {
        ADD_FAILURE() << "the run changed " << name;
      }
    }
    for (const auto& [name, contents] : before) {
      if (!after.contains(name)) ADD_FAILURE() << "the run removed " << name;
    }
  }

  // qtool args must fail cleanly (see the file comment): first with no output file, then, when output
  // is given, over an existing output file that must survive unchanged.
  void expect_clean_failure(const std::vector<std::string>& args, const std::string& output,
                            const std::string& file, const std::string& phrase) const {
    SCOPED_TRACE(joined(args));
    {
      if (!output.empty()) fs::remove(path(output));
      const auto before = snapshot(folder_.path());
      expect_error_line(qtool(args), file, phrase);
      expect_folder_unchanged(before);
    }
    if (!output.empty()) {
      SCOPED_TRACE("over an existing " + output);
      write(output, kPrevious);
      const auto before = snapshot(folder_.path());
      expect_error_line(qtool(args), file, phrase);
      expect_folder_unchanged(before);
      EXPECT_EQ(read_file(path(output)), kPrevious);
      fs::remove(path(output));
    }
  }

  TempFolder folder_;
};

// The members of a quantized .npz, read with the library's plain .npz reader (not read_quantized).
// A file without a zero_point member (every zero point 0, format version 3) gets an int32 array of zeros
// shaped like scale, and has_zero_point false.
struct Quantized {
  io::NpyArray q, scale, zero_point;
  json meta;
  bool has_zero_point = true;
};

inline Quantized read_quantized_members(const fs::path& file) {
  auto members = io::read_npz(file.string());
  const bool has_zp = members.count("zero_point") > 0;
  io::NpyArray zp;
  if (has_zp) {
    zp = std::move(members.at("zero_point"));
  } else {
    const io::NpyArray& scale = members.at("scale");
    const std::vector<std::int32_t> zeros(static_cast<std::size_t>(scale.numel()), 0);
    zp = io::parse_npy(io::encode_npy(io::DType::kInt32, scale.shape(), std::as_bytes(std::span(zeros))),
                       "zero_point");
  }
  return Quantized{std::move(members.at("q")), std::move(members.at("scale")), std::move(zp),
                   json::parse(members.at("meta").as_string()), has_zp};
}

inline void expect_keys(const json& j, const std::vector<std::string>& keys) {
  for (const auto& key : keys) EXPECT_TRUE(j.contains(key)) << "missing key " << key << " in " << j.dump();
}

}  // namespace qk::cli_test
