// qtool on bad inputs and outputs (quantize, dequantize, inspect): exit code 1, one error line naming the
// file and the problem, the folder untouched (cli_fixture.hpp says what a clean failure is).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <ostream>

#include "cli_fixture.hpp"

namespace qk::cli_test {
namespace {

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
  // The bit width is a usage error (exit 2), found before the input is read; nothing is written.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"quantize", "w.npy", "-o", "out.npz", "--bits", "1"},
        std::vector<std::string>{"quantize", "w.npy", "-o", "out.npz", "--bits", "9"},
        std::vector<std::string>{"fake-quant", "w.npy", "-o", "out.npy", "--bits", "9"}}) {
    const auto before = snapshot(folder_.path());
    const ProcessResult r = qtool(args);
    EXPECT_EQ(r.exit_code, 2) << joined(args);
    EXPECT_THAT(r.err,
                StartsWith("qtool: usage error: --bits: Value " + args.back() + " not in range 2 to 8"));
    expect_folder_unchanged(before);
  }
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
  // quantize refuses a .npy output before anything else (a quantized file is an .npz): the input is safe.
  for (const char* out : {"w.npy", "./w.npy"}) {
    const auto before = snapshot(folder_.path());
    const ProcessResult r = qtool({"quantize", "w.npy", "-o", out});
    EXPECT_EQ(r.exit_code, 2) << out;
    EXPECT_THAT(r.err, HasSubstr("a quantized file is an .npz archive"));
    expect_folder_unchanged(before);
  }
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

}  // namespace
}  // namespace qk::cli_test
