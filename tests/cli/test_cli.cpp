// Command-line tests of qtool: the real binary run as a child process in a scratch folder per test.
// Failures must give exit code 1 and one "qtool: error: " line naming the file and the problem, create
// no output, leave an existing output byte-for-byte as it was and leave no temporary file behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "cli_test_util.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"

namespace qk::cli_test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::HasSubstr;
using testing::StartsWith;

const std::string kPrevious = "an output file that was here before the run\n";

std::string joined(const std::vector<std::string>& args) {
  std::string s = "qtool";
  for (const auto& a : args) s += " " + a;
  return s;
}

// Values with a different range per row, so per-channel and per-group parameters differ.
std::vector<float> weights(std::int64_t rows, std::int64_t cols) {
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
void expect_within_half_step(float x, float dequantized, float scale, std::size_t i) {
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

// Bad inputs and outputs: exit code 1, one error line, the folder untouched.

using CliErrors = Cli;

TEST_F(CliErrors, MissingInput) {
  expect_clean_failure({"quantize", "missing.npy", "-o", "out.npz"}, "out.npz", "missing.npy",
                       "cannot open: No such file or directory");
  expect_clean_failure({"fake-quant", "missing.npy", "-o", "out.npy"}, "out.npy", "missing.npy",
                       "cannot open: No such file or directory");
  expect_clean_failure({"dequantize", "missing.npz", "-o", "out.npy"}, "out.npy", "missing.npz",
                       "cannot open: No such file or directory");
  expect_clean_failure({"inspect", "missing.npy"}, "", "missing.npy",
                       "cannot open: No such file or directory");
  expect_clean_failure({"inspect", "missing.npz"}, "", "missing.npz",
                       "cannot open: No such file or directory");
}

// An unreadable input (chmod 000) cannot be tested here: the tests run as root, who reads it anyway.
TEST_F(CliErrors, InputIsADirectory) {
  fs::create_directory(path("folder.npy"));
  fs::create_directory(path("folder.npz"));
  expect_clean_failure({"quantize", "folder.npy", "-o", "out.npz"}, "out.npz", "folder.npy",
                       "not a regular file");
  expect_clean_failure({"fake-quant", "folder.npy", "-o", "out.npy"}, "out.npy", "folder.npy",
                       "not a regular file");
  expect_clean_failure({"dequantize", "folder.npz", "-o", "out.npy"}, "out.npy", "folder.npz",
                       "not a regular file");
  expect_clean_failure({"inspect", "folder.npy"}, "", "folder.npy", "not a regular file");
}

TEST_F(CliErrors, NotAnNpyFile) {
  write("text.npy", "just some text, not an array\n");
  write("zip.npy", std::string("PK\x03\x04", 4) + std::string(100, '\0'));
  for (const std::string name : {"text.npy", "zip.npy"}) {
    expect_clean_failure({"quantize", name, "-o", "out.npz"}, "out.npz", name, "not a .npy file (bad magic)");
    expect_clean_failure({"inspect", name}, "", name, "not a .npy file (bad magic)");
  }
}

TEST_F(CliErrors, TruncatedHeader) {
  // Shorter than magic + version + header length (10 bytes for version 1, 12 for versions 2 and 3).
  for (const std::string& bytes :
       {std::string("\x93NUM", 4), std::string("\x93NUMPY", 6), std::string("\x93NUMPY\x01\x00", 8),
        std::string("\x93NUMPY\x01\x00\x10", 9), std::string("\x93NUMPY\x02\x00\x10\x00\x00", 11)}) {
    SCOPED_TRACE(bytes.size());
    write("short.npy", bytes);
    expect_clean_failure({"quantize", "short.npy", "-o", "out.npz"}, "out.npz", "short.npy",
                         "truncated header");
  }
}

TEST_F(CliErrors, HeaderLengthPastTheEnd) {
  const std::string dict = npy_dict("<f4", "(4,)");
  write("v1.npy", std::string("\x93NUMPY\x01\x00", 8) + std::string("\xe8\x03", 2) + dict);  // 1000
  write("v2.npy", std::string("\x93NUMPY\x02\x00", 8) + std::string("\xff\xff\xff\xff", 4) + dict);
  expect_clean_failure({"quantize", "v1.npy", "-o", "out.npz"}, "out.npz", "v1.npy",
                       "header length 1000 runs past the end of the file");
  expect_clean_failure({"quantize", "v2.npy", "-o", "out.npz"}, "out.npz", "v2.npy",
                       "header length 4294967295 runs past the end of the file");
  expect_clean_failure({"inspect", "v1.npy"}, "", "v1.npy", "runs past the end of the file");
}

struct BadHeader {
  const char* name;
  const char* dict;
  const char* phrase;
};

// gtest prints the parameter in test listings (and CTest names): the case name, not its bytes.
void PrintTo(const BadHeader& c, std::ostream* os) { *os << c.name; }

class CliMalformedHeader : public Cli, public testing::WithParamInterface<BadHeader> {};

TEST_P(CliMalformedHeader, IsRejected) {
  write("bad.npy", npy_bytes(GetParam().dict, std::string(16, '\0')));
  expect_clean_failure({"quantize", "bad.npy", "-o", "out.npz"}, "out.npz", "bad.npy", GetParam().phrase);
  expect_clean_failure({"fake-quant", "bad.npy", "-o", "out.npy"}, "out.npy", "bad.npy", GetParam().phrase);
}

INSTANTIATE_TEST_SUITE_P(
    Dicts, CliMalformedHeader,
    testing::Values(
        BadHeader{"MissingShape", "{'descr': '<f4', 'fortran_order': False, }",
                  "malformed .npy header: missing key 'shape'"},
        BadHeader{"MissingDescr", "{'fortran_order': False, 'shape': (4,), }",
                  "malformed .npy header: missing key 'descr'"},
        BadHeader{"MissingFortranOrder", "{'descr': '<f4', 'shape': (4,), }",
                  "malformed .npy header: missing key 'fortran_order'"},
        BadHeader{"ShapeNotATuple", "{'descr': '<f4', 'fortran_order': False, 'shape': (4), }",
                  "malformed .npy header: shape is not a tuple"},
        BadHeader{"ShapeAsList", "{'descr': '<f4', 'fortran_order': False, 'shape': [4], }",
                  "malformed .npy header: expected '('"},
        BadHeader{"ShapeWithName", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, n), }",
                  "malformed .npy header: expected a dimension"},
        BadHeader{"ShapeUnclosed", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2 }",
                  "malformed .npy header: expected ',' or ')' in shape"},
        BadHeader{"NegativeDimension", "{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }",
                  "negative dimension in the .npy header shape"},
        BadHeader{"FortranOrderNotABool", "{'descr': '<f4', 'fortran_order': 0, 'shape': (4,), }",
                  "malformed .npy header: fortran_order must be True or False"},
        BadHeader{"UnknownKey", "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'order': 'C', }",
                  "malformed .npy header: unexpected key 'order'"},
        BadHeader{"DuplicateKey", "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'shape': (4,), }",
                  "malformed .npy header: duplicate key 'shape'"},
        BadHeader{"UnbalancedQuotes", "{'descr': '<f4, 'fortran_order': False, 'shape': (4,), }",
                  "malformed .npy header: expected ',' or '}'"},
        BadHeader{"UnterminatedString", "{'descr': '<f4", "malformed .npy header: unterminated string"},
        BadHeader{"TextAfterTheDict", "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), } trailing",
                  "malformed .npy header: unexpected text after the dict"},
        BadHeader{"Garbage", "print('hello')", "malformed .npy header: expected '{'"},
        BadHeader{"Empty", "", "malformed .npy header: expected '{'"}),
    [](const testing::TestParamInfo<BadHeader>& info) { return std::string(info.param.name); });

TEST_F(CliErrors, ShapeOverflows) {
  // 2^32 * 2^32 elements do not fit in int64; 2^31 * 2^31 float32 elements fit, their 2^64 bytes do not.
  write("elements.npy", npy_bytes(npy_dict("<f4", "(4294967296, 4294967296)"), ""));
  write("bytes.npy", npy_bytes(npy_dict("<f4", "(2147483648, 2147483648)"), ""));
  write("digits.npy", npy_bytes(npy_dict("<f4", "(99999999999999999999,)"), ""));
  expect_clean_failure({"quantize", "elements.npy", "-o", "out.npz"}, "out.npz", "elements.npy",
                       "element count of shape (4294967296, 4294967296) overflows 64 bits");
  expect_clean_failure({"quantize", "bytes.npy", "-o", "out.npz"}, "out.npz", "bytes.npy",
                       "byte count of shape (2147483648, 2147483648) overflows 64 bits");
  expect_clean_failure({"quantize", "digits.npy", "-o", "out.npz"}, "out.npz", "digits.npy",
                       "a dimension in the .npy header overflows 64 bits");
  expect_clean_failure({"inspect", "elements.npy"}, "", "elements.npy", "overflows 64 bits");
}

TEST_F(CliErrors, DataSizeDisagreesWithShape) {
  const std::string dict = npy_dict("<f4", "(4, 4)");  // needs 64 bytes of data
  write("short.npy", npy_bytes(dict, std::string(60, '\0')));
  write("long.npy", npy_bytes(dict, std::string(68, '\0')));
  expect_clean_failure({"quantize", "short.npy", "-o", "out.npz"}, "out.npz", "short.npy",
                       "truncated data: the header needs 64 bytes, the file has 60");
  expect_clean_failure({"quantize", "long.npy", "-o", "out.npz"}, "out.npz", "long.npy",
                       "4 unexpected bytes after the data");
  expect_clean_failure({"fake-quant", "short.npy", "-o", "out.npy"}, "out.npy", "short.npy",
                       "truncated data");
  expect_clean_failure({"inspect", "long.npy"}, "", "long.npy", "unexpected bytes after the data");
}

TEST_F(CliErrors, UnsupportedDtype) {
  write("complex.npy", npy_bytes(npy_dict("<c8", "(4,)"), std::string(32, '\0')));
  write("object.npy", npy_bytes(npy_dict("|O", "(4,)"), std::string(32, '\0')));
  write("int.npy", npy_bytes(npy_dict("<i4", "(4,)"), std::string(16, '\0')));
  expect_clean_failure({"quantize", "complex.npy", "-o", "out.npz"}, "out.npz", "complex.npy",
                       "unsupported dtype '<c8'");
  expect_clean_failure({"quantize", "object.npy", "-o", "out.npz"}, "out.npz", "object.npy",
                       "object arrays are not supported");
  expect_clean_failure({"fake-quant", "object.npy", "-o", "out.npy"}, "out.npy", "object.npy",
                       "object arrays are not supported");
  expect_clean_failure({"inspect", "object.npy"}, "", "object.npy", "object arrays are not supported");
  expect_clean_failure({"quantize", "int.npy", "-o", "out.npz"}, "out.npz", "int.npy",
                       "dtype int32 cannot be quantized (expected float16, float32 or float64)");
}

TEST_F(CliErrors, NonFiniteValues) {
  std::vector<float> v = weights(4, 64);
  v[1 * 64 + 2] = std::numeric_limits<float>::quiet_NaN();
  v[2 * 64 + 3] = std::numeric_limits<float>::infinity();
  v[3 * 64 + 0] = -std::numeric_limits<float>::infinity();
  write("nan.npy", npy_of("<f4", {4, 64}, v));
  const std::string message = "3 non-finite value(s) (NaN or Inf), first at index [1, 2]";
  expect_clean_failure({"quantize", "nan.npy", "-o", "out.npz"}, "out.npz", "nan.npy", message);
  expect_clean_failure({"quantize", "nan.npy", "-o", "out.npz", "--per-tensor"}, "out.npz", "nan.npy",
                       message);
  expect_clean_failure({"fake-quant", "nan.npy", "-o", "out.npy"}, "out.npy", "nan.npy", message);

  // float64, rank 3: the index is the multi-index of the first bad element in C order.
  std::vector<double> d(24, 0.5);
  d[17] = -std::numeric_limits<double>::infinity();
  write("inf.npy", npy_of("<f8", {2, 3, 4}, d));
  expect_clean_failure({"quantize", "inf.npy", "-o", "out.npz"}, "out.npz", "inf.npy",
                       "1 non-finite value(s) (NaN or Inf), first at index [1, 1, 1]");
}

TEST_F(CliErrors, AxisOutOfRange) {
  write_weights();
  expect_clean_failure({"quantize", "w.npy", "-o", "out.npz", "--axis", "2"}, "out.npz", "w.npy",
                       "axis 2 is out of range for a tensor of rank 2");
  expect_clean_failure({"quantize", "w.npy", "-o", "out.npz", "--axis", "-3"}, "out.npz", "w.npy",
                       "axis -3 is out of range for a tensor of rank 2");
  expect_clean_failure({"fake-quant", "w.npy", "-o", "out.npy", "--axis", "2"}, "out.npy", "w.npy",
                       "axis 2 is out of range for a tensor of rank 2");
}

TEST_F(CliErrors, GroupSizeDoesNotDivideTheLastAxis) {
  write_weights();
  expect_clean_failure({"quantize", "w.npy", "-o", "out.npz", "--group-size", "5"}, "out.npz", "w.npy",
                       "group size 5 does not divide the last axis (64)");
  expect_clean_failure({"quantize", "w.npy", "-o", "out.npz", "--bits", "4", "--group-size", "128"},
                       "out.npz", "w.npy", "group size 128 does not divide the last axis (64)");
  expect_clean_failure({"fake-quant", "w.npy", "-o", "out.npy", "--group-size", "48"}, "out.npy", "w.npy",
                       "group size 48 does not divide the last axis (64)");
}

TEST_F(CliErrors, BitsOutOfRange) {
  write_weights();
  // The bit width is checked before the input is read: the message is about the option, not a file.
  expect_clean_failure({"quantize", "w.npy", "-o", "out.npz", "--bits", "1"}, "out.npz", "",
                       "bits must be between 2 and 8, got 1");
  expect_clean_failure({"quantize", "w.npy", "-o", "out.npz", "--bits", "9"}, "out.npz", "",
                       "bits must be between 2 and 8, got 9");
  expect_clean_failure({"fake-quant", "w.npy", "-o", "out.npy", "--bits", "9"}, "out.npy", "",
                       "bits must be between 2 and 8, got 9");
}

TEST_F(CliErrors, OutputIsTheInput) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz"});
  fs::create_symlink("w.npy", path("link.npy"));
  fs::create_hard_link(path("w.npy"), path("hard.npy"));
  fs::create_symlink("q.npz", path("link.npz"));
  const std::string same = "the output is the same file as the input 'w.npy'";
  // The "existing output" is the input itself here: the snapshot shows it unchanged.
  expect_clean_failure({"fake-quant", "w.npy", "-o", "w.npy"}, "", "w.npy", same);
  expect_clean_failure({"quantize", "w.npy", "-o", "w.npy"}, "", "w.npy", same);
  expect_clean_failure({"quantize", "w.npy", "-o", "./w.npy"}, "", "./w.npy", same);
  expect_clean_failure({"fake-quant", "w.npy", "-o", "link.npy"}, "", "link.npy", same);
  expect_clean_failure({"fake-quant", "w.npy", "-o", "hard.npy"}, "", "hard.npy", same);
  expect_clean_failure({"fake-quant", "link.npy", "-o", "w.npy"}, "", "w.npy",
                       "the output is the same file as the input 'link.npy'");
  expect_clean_failure({"dequantize", "q.npz", "-o", "q.npz"}, "", "q.npz",
                       "the output is the same file as the input 'q.npz'");
  expect_clean_failure({"dequantize", "q.npz", "-o", "link.npz"}, "", "link.npz",
                       "the output is the same file as the input 'q.npz'");
}

TEST_F(CliErrors, OutputFolderDoesNotExist) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz"});
  const std::string phrase = "cannot create a temporary file in 'missing': No such file or directory";
  expect_clean_failure({"quantize", "w.npy", "-o", "missing/out.npz"}, "", "missing/out.npz", phrase);
  expect_clean_failure({"fake-quant", "w.npy", "-o", "missing/out.npy"}, "", "missing/out.npy", phrase);
  expect_clean_failure({"dequantize", "q.npz", "-o", "missing/out.npy"}, "", "missing/out.npy", phrase);
}

TEST_F(CliErrors, OutputFolderIsAFile) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz"});
  write("somefile.npy", "a regular file\n");
  const std::string phrase = "cannot create a temporary file in 'somefile.npy': Not a directory";
  expect_clean_failure({"quantize", "w.npy", "-o", "somefile.npy/out.npz"}, "", "somefile.npy/out.npz",
                       phrase);
  expect_clean_failure({"fake-quant", "w.npy", "-o", "somefile.npy/out.npy"}, "", "somefile.npy/out.npy",
                       phrase);
  expect_clean_failure({"dequantize", "q.npz", "-o", "somefile.npy/out.npy"}, "", "somefile.npy/out.npy",
                       phrase);
}

TEST_F(CliErrors, OutputIsAFolder) {
  // The work is done and the temporary file written before the rename fails: it must still be removed.
  write_weights();
  fs::create_directory(path("out.npz"));
  fs::create_directory(path("out.npy"));
  expect_clean_failure({"quantize", "w.npy", "-o", "out.npz"}, "", "out.npz",
                       "rename failed: Is a directory");
  expect_clean_failure({"fake-quant", "w.npy", "-o", "out.npy"}, "", "out.npy",
                       "rename failed: Is a directory");
}

TEST_F(CliErrors, CorruptArchive) {
  std::string noise(4096, '\0');
  std::uint32_t state = 12345;
  for (char& c : noise) {
    state = state * 1664525u + 1013904223u;
    c = static_cast<char>(state >> 24);
  }
  write("noise.npz", noise);
  write("empty.npz", "");
  write("pk.npz", std::string("PK\x03\x04", 4) + noise.substr(0, 200));
  for (const std::string name : {"noise.npz", "pk.npz"}) {
    expect_clean_failure({"dequantize", name, "-o", "out.npy"}, "out.npy", name, "not a valid .npz archive");
    expect_clean_failure({"inspect", name}, "", name, "not a valid .npz archive");
  }
  expect_clean_failure({"dequantize", "empty.npz", "-o", "out.npy"}, "out.npy", "empty.npz",
                       "not an .npz archive (empty file)");
  expect_clean_failure({"inspect", "empty.npz"}, "", "empty.npz", "not an .npz archive (empty file)");
}

TEST_F(CliErrors, DamagedQuantizedArchive) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz"});
  const std::string whole = read_file(path("q.npz"));
  // Cut anywhere, the archive loses its central directory (at the end of a zip).
  for (const std::size_t keep : {whole.size() / 2, whole.size() - 10, std::size_t{30}}) {
    SCOPED_TRACE(keep);
    write("cut.npz", whole.substr(0, keep));
    expect_clean_failure({"dequantize", "cut.npz", "-o", "out.npy"}, "out.npy", "cut.npz",
                         "not a valid .npz archive");
    expect_clean_failure({"inspect", "cut.npz"}, "", "cut.npz", "not a valid .npz archive");
  }
  // One flipped bit inside the codes (the first, stored member): the sizes agree, the CRC does not.
  const std::size_t codes = whole.find("\x93NUMPY") + 128 + 100;
  std::string flipped = whole;
  flipped[codes] = static_cast<char>(flipped[codes] ^ 0x10);
  write("flipped.npz", flipped);
  expect_clean_failure({"dequantize", "flipped.npz", "-o", "out.npy"}, "out.npy", "flipped.npz['q']",
                       "corrupt member: CRC error");
  expect_clean_failure({"inspect", "flipped.npz"}, "", "flipped.npz['q']", "corrupt member: CRC error");
}

TEST_F(CliErrors, ArchiveWithoutMeta) {
  io::NpzWriter writer;
  const std::vector<std::int8_t> q(8, 1);
  const std::vector<float> scale{0.5f};
  const std::vector<std::int32_t> zero_point{0};
  writer.add<std::int8_t>("q", {8}, q);
  writer.add<float>("scale", {}, scale);
  writer.add<std::int32_t>("zero_point", {}, zero_point);
  writer.write(path("nometa.npz").string());
  expect_clean_failure({"dequantize", "nometa.npz", "-o", "out.npy"}, "out.npy", "nometa.npz",
                       "not a quantized tensor file (member 'meta' is missing)");
}

// Misuse of the command line: exit code 2.

struct Misuse {
  const char* name;
  std::vector<std::string> args;
  const char* phrase;
};

void PrintTo(const Misuse& c, std::ostream* os) { *os << c.name; }

class CliUsage : public Cli, public testing::WithParamInterface<Misuse> {};

TEST_P(CliUsage, ExitsWithTwo) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz"});
  io::NpzWriter plain;
  plain.add<float>("w", {2}, std::vector<float>{1.0f, 2.0f});
  plain.write(path("plain.npz").string());
  const auto before = snapshot(folder_.path());
  const ProcessResult r = qtool(GetParam().args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith("qtool: usage error: "));
  EXPECT_THAT(r.err, HasSubstr(GetParam().phrase));
  expect_folder_unchanged(before);
}

INSTANTIATE_TEST_SUITE_P(
    Args, CliUsage,
    testing::Values(
        Misuse{"NoSubcommand", {}, "A subcommand is required"},
        Misuse{"UnknownSubcommand", {"frobnicate"}, "qtool: usage error: "},
        Misuse{"UnknownOption", {"quantize", "w.npy", "-o", "out.npz", "--bogus"}, "--bogus"},
        Misuse{"PerTensorWithAxis",
               {"quantize", "w.npy", "-o", "out.npz", "--per-tensor", "--axis", "0"},
               "--per-tensor excludes --axis"},
        Misuse{"AxisWithGroupSize",
               {"quantize", "w.npy", "-o", "out.npz", "--axis", "0", "--group-size", "32"},
               "--axis excludes --group-size"},
        Misuse{"QminWithoutQmax",
               {"quantize", "w.npy", "-o", "out.npz", "--qmin", "-3"},
               "--qmin requires --qmax"},
        Misuse{"ScaleWithoutZeroPoint",
               {"fake-quant", "w.npy", "-o", "out.npy", "--scale", "0.1"},
               "--scale requires --zero-point"},
        Misuse{"MissingOutput", {"quantize", "w.npy"}, "--output is required"},
        Misuse{"BitsNotANumber", {"quantize", "w.npy", "-o", "out.npz", "--bits", "eight"}, "--bits"},
        Misuse{"UnknownDequantizeDtype", {"dequantize", "q.npz", "-o", "out.npy", "--dtype", "f99"}, "f99"},
        Misuse{"ReferenceForAPlainArchive",
               {"inspect", "plain.npz", "--reference", "w.npy"},
               "--reference needs a .npy or a quantized .npz"}),
    [](const testing::TestParamInfo<Misuse>& info) { return std::string(info.param.name); });

using CliHelp = Cli;

TEST_F(CliHelp, HelpAndVersion) {
  ProcessResult r = ok({"--help"});
  EXPECT_THAT(r.out, HasSubstr("Usage"));
  for (const char* sub : {"quantize", "dequantize", "fake-quant", "inspect", "demo", "bench"})
    EXPECT_THAT(r.out, HasSubstr(sub));
  r = ok({"quantize", "--help"});
  for (const char* option :
       {"--bits", "--unsigned", "--affine", "--per-tensor", "--axis", "--group-size", "--qmin", "--qmax",
        "--reduce-range", "--scale", "--zero-point", "--allow-nonfinite", "--json"}) {
    EXPECT_THAT(r.out, HasSubstr(option));
  }
  r = ok({"--version"});
  EXPECT_THAT(r.out, StartsWith("qtool (quantkit) "));
}

// quantize -> dequantize and fake-quant: the values that come back.

using CliRoundTrip = Cli;

// The members of a quantized .npz, read with the library's plain .npz reader (not read_quantized).
struct Quantized {
  io::NpyArray q, scale, zero_point;
  json meta;
};

Quantized read_quantized_members(const fs::path& file) {
  auto members = io::read_npz(file.string());
  return Quantized{std::move(members.at("q")), std::move(members.at("scale")),
                   std::move(members.at("zero_point")), json::parse(members.at("meta").as_string())};
}

TEST_F(CliRoundTrip, Int8PerChannelByDefault) {
  write_weights();
  const ProcessResult r = ok({"quantize", "w.npy", "-o", "q.npz"});
  EXPECT_THAT(r.out, HasSubstr("8-bit signed symmetric per_channel"));
  const Quantized file = read_quantized_members(path("q.npz"));
  EXPECT_EQ(file.q.dtype(), io::DType::kInt8);
  EXPECT_EQ(file.q.shape(), (Shape{4, 64}));
  EXPECT_EQ(file.scale.shape(), (Shape{4, 1}));
  EXPECT_EQ(file.zero_point.shape(), (Shape{4, 1}));
  EXPECT_EQ(file.meta["granularity"], "per_channel");
  EXPECT_EQ(file.meta["axis"], 0);
  EXPECT_EQ(file.meta["bits"], 8);
  EXPECT_EQ(file.meta["packing"], "none");
  EXPECT_EQ(file.meta["shape"], json({4, 64}));
  EXPECT_EQ(file.meta["dtype"], "float32");

  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const io::NpyArray out = io::read_npy(path("d.npy").string());
  ASSERT_EQ(out.dtype(), io::DType::kFloat32);
  ASSERT_EQ(out.shape(), (Shape{4, 64}));
  const auto x = weights(4, 64);
  const auto dq = out.to_vector<float>();
  const auto q = file.q.to_vector<std::int8_t>();
  const auto scale = file.scale.to_vector<float>();
  const auto zero_point = file.zero_point.to_vector<std::int32_t>();
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t row = i / 64;
    EXPECT_EQ(zero_point[row], 0);
    EXPECT_EQ(dq[i], static_cast<float>(q[i] - zero_point[row]) * scale[row]) << "element " << i;
    expect_within_half_step(x[i], dq[i], scale[row], i);
  }
}

TEST_F(CliRoundTrip, Int4PerGroup) {
  write_weights();
  const ProcessResult r = ok({"quantize", "w.npy", "-o", "q.npz", "--bits", "4", "--group-size", "32"});
  EXPECT_THAT(r.out, HasSubstr("4-bit signed symmetric per_group"));
  const Quantized file = read_quantized_members(path("q.npz"));
  EXPECT_EQ(file.q.dtype(), io::DType::kUint8);
  EXPECT_EQ(file.q.shape(), (Shape{128}));  // 256 codes of 4 bits
  EXPECT_EQ(file.scale.shape(), (Shape{4, 2}));
  EXPECT_EQ(file.meta["packing"], "lsb_bitstream");
  EXPECT_EQ(file.meta["group_size"], 32);
  EXPECT_EQ(file.meta["quant_min"], -8);
  EXPECT_EQ(file.meta["quant_max"], 7);

  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const auto dq = io::read_npy(path("d.npy").string()).to_vector<float>();
  const auto x = weights(4, 64);
  const auto scale = file.scale.to_vector<float>();
  ASSERT_EQ(dq.size(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) expect_within_half_step(x[i], dq[i], scale[i / 32], i);
}

TEST_F(CliRoundTrip, AffineUnsigned) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz", "--affine", "--unsigned"});
  const Quantized file = read_quantized_members(path("q.npz"));
  EXPECT_EQ(file.q.dtype(), io::DType::kUint8);
  EXPECT_EQ(file.q.shape(), (Shape{4, 64}));
  EXPECT_EQ(file.meta["scheme"], "affine");
  EXPECT_EQ(file.meta["signed"], false);
  EXPECT_EQ(file.meta["quant_min"], 0);
  EXPECT_EQ(file.meta["quant_max"], 255);
  const auto zero_point = file.zero_point.to_vector<std::int32_t>();
  for (const std::int32_t z : zero_point) {
    EXPECT_GE(z, 0);
    EXPECT_LE(z, 255);
  }
  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const auto dq = io::read_npy(path("d.npy").string()).to_vector<float>();
  const auto x = weights(4, 64);
  const auto scale = file.scale.to_vector<float>();
  for (std::size_t i = 0; i < x.size(); ++i) expect_within_half_step(x[i], dq[i], scale[i / 64], i);
}

TEST_F(CliRoundTrip, PerTensor) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz", "--per-tensor"});
  const Quantized file = read_quantized_members(path("q.npz"));
  EXPECT_EQ(file.scale.shape(), Shape{});
  EXPECT_EQ(file.zero_point.shape(), Shape{});
  EXPECT_EQ(file.meta["granularity"], "per_tensor");
  const float scale = file.scale.to_vector<float>()[0];
  // Symmetric signed 8-bit: scale = max |x| / 127.5 (PyTorch's rule; the largest row has |x| up to 1).
  const auto x = weights(4, 64);
  float amax = 0;
  for (const float v : x) amax = std::max(amax, std::fabs(v));
  EXPECT_FLOAT_EQ(scale, amax / 127.5f);
  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const auto dq = io::read_npy(path("d.npy").string()).to_vector<float>();
  for (std::size_t i = 0; i < x.size(); ++i) expect_within_half_step(x[i], dq[i], scale, i);
}

TEST_F(CliRoundTrip, FixedScaleAndZeroPoint) {
  std::vector<float> x = weights(4, 64);
  x[5] = 10.0f;   // past the top code: clamps to (127 - 3) * 0.05
  x[6] = -10.0f;  // past the bottom code: clamps to (-128 - 3) * 0.05
  write("w.npy", npy_of("<f4", {4, 64}, x));
  ok({"quantize", "w.npy", "-o", "q.npz", "--scale", "0.05", "--zero-point", "3"});
  const Quantized file = read_quantized_members(path("q.npz"));
  EXPECT_EQ(file.scale.to_vector<float>(), std::vector<float>{0.05f});
  EXPECT_EQ(file.zero_point.to_vector<std::int32_t>(), std::vector<std::int32_t>{3});
  EXPECT_EQ(file.meta["granularity"], "per_tensor");
  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const auto dq = io::read_npy(path("d.npy").string()).to_vector<float>();
  EXPECT_EQ(dq[5], 124.0f * 0.05f);
  EXPECT_EQ(dq[6], -131.0f * 0.05f);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (i != 5 && i != 6) expect_within_half_step(x[i], dq[i], 0.05f, i);
  }
}

TEST_F(CliRoundTrip, AllowNonfiniteSaturates) {
  std::vector<float> x = weights(4, 64);
  x[1 * 64 + 2] = std::numeric_limits<float>::quiet_NaN();
  x[2 * 64 + 3] = std::numeric_limits<float>::infinity();
  x[3 * 64 + 0] = -std::numeric_limits<float>::infinity();
  write("nan.npy", npy_of("<f4", {4, 64}, x));
  const ProcessResult r =
      ok({"quantize", "nan.npy", "-o", "q.npz", "--per-tensor", "--allow-nonfinite", "--json"});
  EXPECT_EQ(json::parse(r.out)["nonfinite"], 3);
  const Quantized file = read_quantized_members(path("q.npz"));
  const float scale = file.scale.to_vector<float>()[0];
  // NaN and Inf are left out of the observed range: the scale comes from the finite values alone.
  float amax = 0;
  for (const float v : x) {
    if (std::isfinite(v)) amax = std::max(amax, std::fabs(v));
  }
  EXPECT_FLOAT_EQ(scale, amax / 127.5f);
  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const auto dq = io::read_npy(path("d.npy").string()).to_vector<float>();
  EXPECT_EQ(dq[1 * 64 + 2], 0.0f);             // NaN -> the zero point
  EXPECT_EQ(dq[2 * 64 + 3], 127.0f * scale);   // +Inf -> qmax
  EXPECT_EQ(dq[3 * 64 + 0], -128.0f * scale);  // -Inf -> qmin
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isfinite(x[i])) expect_within_half_step(x[i], dq[i], scale, i);
  }

  // Per channel the saturation uses each row's own range; fake-quant does the same in float.
  ok({"quantize", "nan.npy", "-o", "pc.npz", "--allow-nonfinite"});
  ok({"dequantize", "pc.npz", "-o", "pc.npy"});
  ok({"fake-quant", "nan.npy", "-o", "fq.npy", "--allow-nonfinite"});
  const auto row_scale = read_quantized_members(path("pc.npz")).scale.to_vector<float>();
  const auto pc = io::read_npy(path("pc.npy").string()).to_vector<float>();
  EXPECT_EQ(pc[1 * 64 + 2], 0.0f);
  EXPECT_EQ(pc[2 * 64 + 3], 127.0f * row_scale[2]);
  EXPECT_EQ(pc[3 * 64 + 0], -128.0f * row_scale[3]);
  EXPECT_EQ(read_file(path("fq.npy")), read_file(path("pc.npy")));
}

TEST_F(CliRoundTrip, DequantizeDtypes) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz"});
  ok({"dequantize", "q.npz", "-o", "d32.npy"});
  ok({"dequantize", "q.npz", "-o", "d16.npy", "--dtype", "f16"});
  ok({"dequantize", "q.npz", "-o", "d64.npy", "--dtype", "f64"});
  const Quantized file = read_quantized_members(path("q.npz"));
  const auto q = file.q.to_vector<std::int8_t>();
  const auto scale = file.scale.to_vector<float>();
  const io::NpyArray d16 = io::read_npy(path("d16.npy").string());
  const io::NpyArray d64 = io::read_npy(path("d64.npy").string());
  const auto d32 = io::read_npy(path("d32.npy").string()).to_vector<float>();
  ASSERT_EQ(d16.dtype(), io::DType::kFloat16);
  ASSERT_EQ(d64.dtype(), io::DType::kFloat64);
  const auto h = d16.to_vector<half>();
  const auto d = d64.to_vector<double>();
  for (std::size_t i = 0; i < q.size(); ++i) {
    EXPECT_EQ(h[i].bits, half(d32[i]).bits) << "element " << i;
    EXPECT_EQ(d[i], static_cast<double>(q[i]) * static_cast<double>(scale[i / 64])) << "element " << i;
  }
}

struct FloatType {
  const char* name;  // the --dtype of dequantize
  const char* descr;
  io::DType dtype;
};

void PrintTo(const FloatType& c, std::ostream* os) { *os << c.name; }

class CliFakeQuant : public Cli, public testing::WithParamInterface<FloatType> {};

// fake-quant writes the input's dtype, with the values of quantize followed by dequantize in that dtype.
TEST_P(CliFakeQuant, KeepsTheDtype) {
  const auto x = weights(4, 64);
  const FloatType& t = GetParam();
  if (t.dtype == io::DType::kFloat16) {
    std::vector<half> h(x.size());
    std::ranges::transform(x, h.begin(), [](float v) { return half(v); });
    write("w.npy", npy_of(t.descr, {4, 64}, h));
  } else if (t.dtype == io::DType::kFloat64) {
    write("w.npy", npy_of(t.descr, {4, 64}, std::vector<double>(x.begin(), x.end())));
  } else {
    write("w.npy", npy_of(t.descr, {4, 64}, x));
  }
  for (const std::vector<std::string>& spec :
       {std::vector<std::string>{}, {"--bits", "4", "--group-size", "16"}, {"--affine", "--per-tensor"}}) {
    std::vector<std::string> fake{"fake-quant", "w.npy", "-o", "fq.npy"};
    std::vector<std::string> quant{"quantize", "w.npy", "-o", "q.npz"};
    fake.insert(fake.end(), spec.begin(), spec.end());
    quant.insert(quant.end(), spec.begin(), spec.end());
    SCOPED_TRACE(joined(fake));
    ok(fake);
    ok(quant);
    ok({"dequantize", "q.npz", "-o", "d.npy", "--dtype", t.name});
    const io::NpyArray fq = io::read_npy(path("fq.npy").string());
    const io::NpyArray d = io::read_npy(path("d.npy").string());
    EXPECT_EQ(fq.dtype(), t.dtype);
    EXPECT_EQ(fq.shape(), (Shape{4, 64}));
    EXPECT_TRUE(std::ranges::equal(fq.raw(), d.raw()));
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CliFakeQuant,
                         testing::Values(FloatType{"f16", "<f2", io::DType::kFloat16},
                                         FloatType{"f32", "<f4", io::DType::kFloat32},
                                         FloatType{"f64", "<f8", io::DType::kFloat64}),
                         [](const testing::TestParamInfo<FloatType>& info) {
                           return std::string(info.param.name);
                         });

using CliInspect = Cli;

TEST_F(CliInspect, NpyStatistics) {
  write_weights();
  const ProcessResult r = ok({"inspect", "w.npy"});
  EXPECT_THAT(r.out, StartsWith("w.npy: .npy (4, 64) float32"));
  for (const char* part : {"count 256", "min ", "max ", "mean ", "std ", "percentiles:", "histogram:"}) {
    EXPECT_THAT(r.out, HasSubstr(part));
  }
  EXPECT_THAT(r.out, testing::Not(HasSubstr("SQNR")));
}

TEST_F(CliInspect, NpyAgainstAReference) {
  write_weights();
  ok({"fake-quant", "w.npy", "-o", "fq.npy"});
  const ProcessResult r = ok({"inspect", "fq.npy", "--reference", "w.npy"});
  EXPECT_THAT(r.out, HasSubstr("vs reference: MSE"));
  EXPECT_THAT(r.out, HasSubstr("SQNR"));
  EXPECT_THAT(r.out, HasSubstr(" dB"));
}

TEST_F(CliInspect, QuantizedFile) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz"});
  ProcessResult r = ok({"inspect", "q.npz"});
  EXPECT_THAT(r.out, StartsWith("q.npz: quantized (4, 64) (from float32)"));
  EXPECT_THAT(r.out, HasSubstr("8-bit signed symmetric per_channel (axis 0), codes [-128, 127]"));
  EXPECT_THAT(r.out, HasSubstr("4 scale(s)"));
  r = ok({"inspect", "q.npz", "--reference", "w.npy"});
  EXPECT_THAT(r.out, HasSubstr("SQNR"));
  ok({"quantize", "w.npy", "-o", "q4.npz", "--bits", "4", "--group-size", "32"});
  r = ok({"inspect", "q4.npz"});
  EXPECT_THAT(r.out, HasSubstr("4-bit signed symmetric per_group (group size 32), codes [-8, 7], packed"));
}

TEST_F(CliInspect, PlainArchive) {
  io::NpzWriter writer;
  const std::vector<float> a(6, 1.5f);
  writer.add<float>("weights", {2, 3}, a);
  writer.write(path("plain.npz").string());
  const ProcessResult r = ok({"inspect", "plain.npz"});
  EXPECT_THAT(r.out, HasSubstr("plain.npz: .npz with 1 member(s)"));
  EXPECT_THAT(r.out, HasSubstr("weights"));
}

TEST_F(CliInspect, ReferenceOfAnotherShape) {
  write_weights();
  write("other.npy", npy_of("<f4", {2, 128}, weights(2, 128)));
  ok({"quantize", "w.npy", "-o", "q.npz"});
  expect_clean_failure({"inspect", "q.npz", "--reference", "other.npy"}, "", "other.npy",
                       "reference shape (2, 128) differs from (4, 64)");
  expect_clean_failure({"inspect", "w.npy", "--reference", "other.npy"}, "", "other.npy",
                       "reference shape (2, 128) differs from (4, 64)");
}

// --json: stdout is one JSON document with the documented keys.

using CliJson = Cli;

void expect_keys(const json& j, const std::vector<std::string>& keys) {
  for (const auto& key : keys) EXPECT_TRUE(j.contains(key)) << "missing key " << key << " in " << j.dump();
}

TEST_F(CliJson, Quantize) {
  write_weights();
  const ProcessResult r = ok({"quantize", "w.npy", "-o", "q.npz", "--json"});
  const json j = json::parse(r.out);  // the whole of stdout is one JSON document
  expect_keys(j, {"input", "output", "shape", "dtype", "bits", "signed", "scheme", "granularity", "quant_min",
                  "quant_max", "scales", "input_bytes", "output_bytes", "nonfinite", "seconds", "gb_per_s",
                  "peak_rss_bytes"});
  EXPECT_EQ(j["input"], "w.npy");
  EXPECT_EQ(j["output"], "q.npz");
  EXPECT_EQ(j["shape"], json({4, 64}));
  EXPECT_EQ(j["dtype"], "float32");
  EXPECT_EQ(j["bits"], 8);
  EXPECT_EQ(j["signed"], true);
  EXPECT_EQ(j["scheme"], "symmetric");
  EXPECT_EQ(j["granularity"], "per_channel");
  EXPECT_EQ(j["quant_min"], -128);
  EXPECT_EQ(j["quant_max"], 127);
  EXPECT_EQ(j["scales"], 4);
  EXPECT_EQ(j["input_bytes"], 4 * 64 * 4);
  EXPECT_EQ(j["output_bytes"], fs::file_size(path("q.npz")));
  EXPECT_EQ(j["nonfinite"], 0);
  EXPECT_GT(j["peak_rss_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_GE(j["seconds"].get<double>(), 0.0);

  // --json before the subcommand means the same.
  const json g = json::parse(
      ok({"--json", "quantize", "w.npy", "-o", "q2.npz", "--bits", "4", "--group-size", "32"}).out);
  EXPECT_EQ(g["bits"], 4);
  EXPECT_EQ(g["granularity"], "per_group");
  EXPECT_EQ(g["scales"], 8);
}

TEST_F(CliJson, FakeQuantAndDequantize) {
  write_weights();
  const json f = json::parse(ok({"fake-quant", "w.npy", "-o", "fq.npy", "--json", "--affine"}).out);
  expect_keys(f, {"input", "output", "shape", "bits", "scheme", "output_bytes", "peak_rss_bytes"});
  EXPECT_EQ(f["scheme"], "affine");
  EXPECT_EQ(f["output_bytes"], fs::file_size(path("fq.npy")));
  ok({"quantize", "w.npy", "-o", "q.npz"});
  const json d = json::parse(ok({"dequantize", "q.npz", "-o", "d.npy", "--dtype", "f64", "--json"}).out);
  expect_keys(d, {"input", "output", "shape", "dtype", "bits", "output_bytes"});
  EXPECT_EQ(d["dtype"], "float64");
  EXPECT_EQ(d["shape"], json({4, 64}));
  EXPECT_EQ(d["output_bytes"], fs::file_size(path("d.npy")));
}

TEST_F(CliJson, Inspect) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz"});
  const json n = json::parse(ok({"inspect", "w.npy", "--json"}).out);
  expect_keys(n, {"file", "kind", "shape", "dtype", "bytes", "stats"});
  EXPECT_EQ(n["kind"], "npy");
  expect_keys(n["stats"], {"count", "nonfinite", "min", "max", "mean", "std", "percentiles", "histogram"});
  EXPECT_EQ(n["stats"]["count"], 256);

  const json q = json::parse(ok({"inspect", "q.npz", "--reference", "w.npy", "--json"}).out);
  expect_keys(q, {"file", "kind", "meta", "scales", "scale_min", "scale_max", "zero_point_min",
                  "zero_point_max", "bytes", "original_bytes", "compression_ratio", "reference", "error"});
  EXPECT_EQ(q["kind"], "quantized");
  EXPECT_EQ(q["meta"]["format"], "quantkit.qtensor/1");
  EXPECT_EQ(q["original_bytes"], 1024);
  // 8-bit per channel on smooth values: the step is 1/127.5 of each row's range, ~40 dB and more.
  EXPECT_GT(q["error"]["sqnr_db"].get<double>(), 35.0);
}

TEST(CliDemo, PrintsEveryFormat) {
  const TempFolder folder;
  const ProcessResult r = run_qtool({"demo"}, folder.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* row : {"| fp32 |", "| fp16 |", "| int8-per-channel |", "| int4-per-group |"})
    EXPECT_THAT(r.out, HasSubstr(row));
}

TEST(CliDemo, Int8PerChannelKeepsTheBundledWeights) {
  const TempFolder folder;
  const ProcessResult r = run_qtool({"demo", "--json"}, folder.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  bool found = false;
  for (const auto& row : j["results"]) {
    if (row["format"] != "int8-per-channel") continue;
    found = true;
    // README's demo table: INT8 per channel keeps ~39 dB on the Silero VAD weights; 35 leaves room for
    // rounding-rule changes, while any real regression (a wrong axis, a lost scale) drops far below.
    EXPECT_GT(row["sqnr_db"].get<double>(), 35.0);
  }
  EXPECT_TRUE(found) << r.out;
}

// A small run (256x256, batch 4, 3 calls per case) checks the report's shape, not its speed.
TEST(CliBench, JsonNamesEveryCase) {
  const TempFolder folder;
  const ProcessResult r =
      run_qtool({"bench", "--size", "256", "--batch", "4", "--repeat", "3", "--threads", "2", "--json"},
                folder.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_FALSE(j["machine"]["cpu"].get<std::string>().empty());
  EXPECT_GT(j["machine"]["read_gbps"].get<double>(), 0.0);
  std::vector<std::string> names;
  for (const auto& row : j["results"]) {
    names.push_back(row["name"]);
    EXPECT_GT(row["median_us"].get<double>(), 0.0) << row;
    EXPECT_GT(row["gbps"].get<double>(), 0.0) << row;
    ASSERT_TRUE(row.contains("speedup_vs_fp32")) << row;
    if (names.back().rfind("gem", 0) == 0) {
      EXPECT_TRUE(row["speedup_vs_fp32"].is_number()) << row;
      // Against the FP32 output: FP16 ~1e-3, INT8 ~0.1, INT4 ~0.5 at this size; a broken kernel is far off.
      EXPECT_LT(row["max_abs_error"].get<double>(), 2.0) << row;
    }
  }
  // 256 holds whole NF4 (64) and Q4DQ (256) blocks per row, so both block formats are benchmarked.
  EXPECT_EQ(names,
            (std::vector<std::string>{"gemv/fp32", "gemv/fp16", "gemv/int8", "gemv/int4", "gemv/nf4",
                                      "gemv/q4dq", "gemm/fp32", "gemm/fp16", "gemm/int8", "gemm/int4",
                                      "quantize/int8", "dequantize/int8", "dequantize/fp8-e4m3", "memcpy"}));
  // A size without whole blocks leaves that format out rather than failing: 192 = 3 NF4 blocks, no Q4DQ.
  const ProcessResult odd = run_qtool({"bench", "--size", "192", "--batch", "2", "--repeat", "1", "--json"},
                                      folder.path().string());
  ASSERT_EQ(odd.exit_code, 0) << odd.err;
  std::vector<std::string> odd_names;
  const json odd_json = json::parse(odd.out);  // kept alive: the loop ranges over a member of it
  for (const auto& row : odd_json["results"]) odd_names.push_back(row["name"]);
  EXPECT_NE(std::find(odd_names.begin(), odd_names.end(), "gemv/nf4"), odd_names.end());
  EXPECT_EQ(std::find(odd_names.begin(), odd_names.end(), "gemv/q4dq"), odd_names.end());
}

TEST(CliBench, TableAndUsageErrors) {
  const TempFolder folder;
  ProcessResult r =
      run_qtool({"bench", "--size", "128", "--batch", "2", "--repeat", "1"}, folder.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("| gemv/int4 |"));
  EXPECT_THAT(r.out, HasSubstr("streaming read"));
  r = run_qtool({"bench", "--size", "0"}, folder.path().string());
  EXPECT_EQ(r.exit_code, 2);
  r = run_qtool({"bench", "--threads", "x"}, folder.path().string());
  EXPECT_EQ(r.exit_code, 2);
}

struct InteropCase {
  const char* name;
  Shape shape;
  std::vector<std::string> args;
};

void PrintTo(const InteropCase& c, std::ostream* os) { *os << c.name; }

class CliNumpy : public Cli, public testing::WithParamInterface<InteropCase> {};

// tests/cli/check_qfile.py decodes qtool's .npz with numpy alone (np.load without pickles, the meta JSON,
// the packed bit layout) and requires (q - zero_point) * scale to equal qtool dequantize's output exactly.
TEST_P(CliNumpy, DecodesWhatQtoolWrites) {
  const std::string python = numpy_python();
  if (python.empty())
    GTEST_SKIP() << "no python3 that imports numpy (QK_PYTHON3 is empty): apt-get install python3-numpy";
  const InteropCase& c = GetParam();
  write("w.npy", npy_of("<f4", c.shape, weights(c.shape[0], c.shape[1])));
  std::vector<std::string> quant{"quantize", "w.npy", "-o", "q.npz"};
  quant.insert(quant.end(), c.args.begin(), c.args.end());
  ok(quant);
  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const ProcessResult r =
      run_process({python, std::string(QK_SOURCE_DIR) + "/tests/cli/check_qfile.py", "q.npz", "d.npy"},
                  folder_.path().string());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    Formats, CliNumpy,
    testing::Values(InteropCase{"Int8PerChannel", {4, 64}, {}},
                    InteropCase{
                        "Uint8AffinePerChannelAxis1", {4, 64}, {"--affine", "--unsigned", "--axis", "1"}},
                    InteropCase{"Int8PerTensor", {4, 64}, {"--per-tensor"}},
                    InteropCase{"Int4PerGroup", {4, 64}, {"--bits", "4", "--group-size", "32"}},
                    InteropCase{"Uint4AffinePerTensorOddCount",
                                {3, 5},
                                {"--bits", "4", "--unsigned", "--affine", "--per-tensor"}},
                    InteropCase{"Int3PerChannel", {5, 7}, {"--bits", "3"}},
                    InteropCase{"Int2PerGroup", {2, 12}, {"--bits", "2", "--group-size", "4"}},
                    InteropCase{"Fp8E4m3PerChannel", {4, 64}, {"--format", "fp8-e4m3"}},
                    InteropCase{"Fp8E5m2PerTensor", {3, 5}, {"--format", "fp8-e5m2", "--per-tensor"}},
                    InteropCase{"Nf4Groups", {4, 128}, {"--format", "nf4"}},
                    InteropCase{"Nf4PerChannelOddCount", {3, 5}, {"--format", "nf4", "--axis", "0"}}),
    [](const testing::TestParamInfo<InteropCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace qk::cli_test
