// numpy interoperability: files numpy writes are read exactly, and numpy's np.load(allow_pickle=False)
// reads what quantkit writes. tests/io/numpy_fixtures.py is numpy's side; it is skipped without numpy.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "io_test_util.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/io/npz.hpp"

namespace qk::io {
namespace {

using test::bits_of;
using test::bytes_of;

using test::ScratchDir;
using testing::HasSubstr;
using testing::StartsWith;

const std::string kScript = std::string(QK_SOURCE_DIR) + "/tests/io/numpy_fixtures.py";
// "h\u00e9llo \u6f22\u5b57 \U0001f600" in numpy_fixtures.py.
const std::string kText = "h\xc3\xa9llo \xe6\xbc\xa2\xe5\xad\x97 \xf0\x9f\x98\x80";

// The python to run: $QK_PYTHON3 if set, else the one CMake found with numpy (QK_NUMPY_PYTHON).
std::string python() {
  if (const char* env = std::getenv("QK_PYTHON3"); env != nullptr && *env != '\0') return env;
  return QK_NUMPY_PYTHON;
}

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

int run(const std::string& command) {
  const int status = std::system(command.c_str());
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The same table as values() in numpy_fixtures.py: 24 values of shape (2, 3, 4), exact in each dtype.
template <class T>
T expected(std::int64_t i) {
  if constexpr (std::is_same_v<T, half>)
    return half(static_cast<float>(i) * 0.25f - 3.0f);
  else if constexpr (std::is_same_v<T, float>)
    return static_cast<float>(i) * 0.375f - 4.0f;
  else if constexpr (std::is_same_v<T, double>)
    return static_cast<double>(i) * 1e10 + 0.5;
  else if constexpr (std::is_same_v<T, std::int8_t>)
    return static_cast<T>(i * 5 - 60);
  else if constexpr (std::is_same_v<T, std::uint8_t>)
    return static_cast<T>(i * 7);
  else if constexpr (std::is_same_v<T, std::int16_t>)
    return static_cast<T>(i * 1000 - 12000);
  else if constexpr (std::is_same_v<T, std::uint16_t>)
    return static_cast<T>(i * 2000);
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return static_cast<T>(i * 100000000 - 1200000000);
  else if constexpr (std::is_same_v<T, std::uint32_t>)
    return static_cast<T>(i * 150000000);
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return i * 100000000000000000 - 1200000000000000000;
  else if constexpr (std::is_same_v<T, std::uint64_t>)
    return static_cast<T>(i) * 700000000000000000u;
  else
    return i % 3 == 0;
}

template <class T>
std::vector<T> expected_all() {
  std::vector<T> v;
  for (std::int64_t i = 0; i < 24; ++i) v.push_back(expected<T>(i));
  return v;
}

// Calls f(T*) for every dtype quantkit reads, with numpy's name of the dtype.
template <class F>
void for_each_dtype(F&& f) {
  f(static_cast<half*>(nullptr), "float16");
  f(static_cast<float*>(nullptr), "float32");
  f(static_cast<double*>(nullptr), "float64");
  f(static_cast<std::int8_t*>(nullptr), "int8");
  f(static_cast<std::uint8_t*>(nullptr), "uint8");
  f(static_cast<std::int16_t*>(nullptr), "int16");
  f(static_cast<std::uint16_t*>(nullptr), "uint16");
  f(static_cast<std::int32_t*>(nullptr), "int32");
  f(static_cast<std::uint32_t*>(nullptr), "uint32");
  f(static_cast<std::int64_t*>(nullptr), "int64");
  f(static_cast<std::uint64_t*>(nullptr), "uint64");
  f(static_cast<bool*>(nullptr), "bool");
}

template <class T>
void expect_values(const NpyArray& a, const std::vector<T>& want) {
  EXPECT_EQ(a.dtype(), dtype_of<T>()) << a.name();
  EXPECT_EQ(a.shape(), (Shape{2, 3, 4})) << a.name();
  const std::vector<T> got = a.to_vector<T>();
  ASSERT_EQ(got.size(), want.size()) << a.name();
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_EQ(bits_of<T>(got[i]), bits_of<T>(want[i])) << a.name() << " [" << i << "]";
}

class NumpyInterop : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (python().empty()) {
      skip_reason_ =
          new std::string("no python3 with numpy was found when configuring (set QK_PYTHON3 to one)");
      return;
    }
    if (run(quoted(python()) + " -c 'import numpy' 2>/dev/null") != 0) {
      skip_reason_ = new std::string(python() + " cannot import numpy");
      return;
    }
    numpy_dir_ = new ScratchDir();
    write_rc_ =
        run(quoted(python()) + " " + quoted(kScript) + " write " + quoted(numpy_dir_->path().string()));
  }
  static void TearDownTestSuite() {
    delete numpy_dir_;
    numpy_dir_ = nullptr;
    delete skip_reason_;
    skip_reason_ = nullptr;
  }
  void SetUp() override {
    if (skip_reason_ != nullptr) GTEST_SKIP() << *skip_reason_;
    ASSERT_EQ(write_rc_, 0) << "numpy_fixtures.py write failed";
  }
  static std::string numpy_file(const std::string& name) { return numpy_dir_->file(name); }

  static ScratchDir* numpy_dir_;
  static std::string* skip_reason_;
  static int write_rc_;
};

ScratchDir* NumpyInterop::numpy_dir_ = nullptr;
std::string* NumpyInterop::skip_reason_ = nullptr;
int NumpyInterop::write_rc_ = -1;

TEST_F(NumpyInterop, ReadsEveryDtypeInEveryLayoutAndVersion) {
  for_each_dtype([&]<class T>(T*, const std::string& name) {
    const std::vector<T> want = expected_all<T>();
    for (const std::string prefix : {"le_", "be_", "fortran_", "fortran_be_", "v2_", "v3_"}) {
      for (const std::size_t threshold : {std::size_t{0}, std::numeric_limits<std::size_t>::max()}) {
        const NpyArray a = read_npy(numpy_file(prefix + name + ".npy"), threshold);
        expect_values(a, want);
        if (prefix == "le_" || prefix == "v2_" || prefix == "v3_") {
          EXPECT_TRUE(a.is_native_c_order()) << a.name();
        } else {
          EXPECT_FALSE(a.is_native_c_order() && sizeof(T) > 1) << a.name();
        }
      }
    }
    EXPECT_EQ(read_npy(numpy_file("v2_" + name + ".npy")).header().version_major, 2);
    EXPECT_EQ(read_npy(numpy_file("v3_" + name + ".npy")).header().version_major, 3);
    EXPECT_TRUE(read_npy(numpy_file("be_" + name + ".npy")).header().big_endian == (sizeof(T) > 1));
    EXPECT_TRUE(read_npy(numpy_file("fortran_" + name + ".npy")).header().fortran_order);
  });
}

TEST_F(NumpyInterop, ReadsSpecialFloatValues) {
  const std::vector<double> d = read_npy(numpy_file("specials_float64.npy")).to_vector<double>();
  ASSERT_EQ(d.size(), 6u);
  EXPECT_TRUE(std::isnan(d[0]));
  EXPECT_EQ(d[1], INFINITY);
  EXPECT_EQ(d[2], -INFINITY);
  EXPECT_TRUE(d[3] == 0.0 && std::signbit(d[3]));
  EXPECT_EQ(d[4], std::numeric_limits<double>::denorm_min());
  EXPECT_EQ(d[5], std::numeric_limits<double>::max());
  const std::vector<float> f = read_npy(numpy_file("specials_float32.npy")).to_vector<float>();
  EXPECT_EQ(f[4], std::numeric_limits<float>::denorm_min());
  EXPECT_EQ(f[5], std::numeric_limits<float>::max());
  const std::vector<half> h = read_npy(numpy_file("specials_float16.npy")).to_vector<half>();
  const std::vector<std::uint16_t> want = {0x7e00, 0x7c00, 0xfc00, 0x8000, 0x0001, 0x7bff};
  for (std::size_t i = 0; i < 6; ++i) {
    if (i == 0) {
      EXPECT_EQ(h[i].bits & 0x7c00, 0x7c00);
      EXPECT_NE(h[i].bits & 0x3ff, 0);
    } else {
      EXPECT_EQ(h[i].bits, want[i]) << i;
    }
  }
}

TEST_F(NumpyInterop, ReadsScalarsEmptyArraysAndStrings) {
  const NpyArray scalar = read_npy(numpy_file("scalar_float64.npy"));
  EXPECT_TRUE(scalar.shape().empty());
  EXPECT_EQ(scalar.to_vector<double>(), std::vector<double>{3.5});
  EXPECT_EQ(read_npy(numpy_file("scalar_int32.npy")).to_vector<std::int32_t>(),
            std::vector<std::int32_t>{-7});
  const NpyArray empty = read_npy(numpy_file("empty_float32.npy"), 0);
  EXPECT_EQ(empty.shape(), (Shape{0, 3}));
  EXPECT_TRUE(empty.to_vector<float>().empty());
  EXPECT_EQ(read_npy(numpy_file("empty_int64.npy")).shape(), Shape{0});
  EXPECT_EQ(read_npy(numpy_file("string.npy")).as_string(), kText);
  EXPECT_EQ(read_npy(numpy_file("string_be.npy")).as_string(), kText);
  EXPECT_EQ(read_npy(numpy_file("string_padded.npy")).as_string(), "ab");
}

TEST_F(NumpyInterop, ReadsSavezAndSavezCompressed) {
  for (const std::string archive : {"arrays.npz", "arrays_c.npz"}) {
    const std::string path = numpy_file(archive);
    EXPECT_EQ(npz_names(path), (std::vector<std::string>{"a", "b", "meta", "s"}));
    const auto arrays = read_npz(path);
    expect_values(arrays.at("a"), expected_all<float>());
    expect_values(arrays.at("b"), expected_all<std::int64_t>());
    EXPECT_EQ(arrays.at("meta").as_string(), kText);
    EXPECT_EQ(arrays.at("s").to_vector<double>(), std::vector<double>{2.5});
    expect_values(read_npz_member(path, "b"), expected_all<std::int64_t>());
    const auto from_memory = read_npz_bytes(test::read_bytes(path), archive);
    expect_values(from_memory.at("a"), expected_all<float>());
  }
}

TEST_F(NumpyInterop, RefusesWhatItCannotReadWithoutUnpickling) {
  const auto refused = [&](const std::string& name, const std::string& message) {
    EXPECT_THAT(
        [&] { (void)read_npy(numpy_file(name)); },
        testing::ThrowsMessage<Error>(AllOf(StartsWith(numpy_file(name) + ": "), HasSubstr(message))));
  };
  refused("object.npy", "object arrays are not supported (quantkit never unpickles)");
  refused("structured.npy", "unsupported dtype");
  refused("complex.npy", "unsupported dtype '<c8'");
  refused("datetime.npy", "unsupported dtype '<M8[ns]'");
  refused("bytes.npy", "unsupported dtype '|S3'");

  const std::string text = numpy_file("with_text.npz");
  EXPECT_THAT([&] { (void)read_npz(text); },
              testing::ThrowsMessage<Error>(
                  AllOf(StartsWith(text + ": "), HasSubstr("member 'readme.txt' is not a .npy array"))));
  EXPECT_THROW(npz_names(text), Error);
  expect_values(read_npz_member(text, "a"), expected_all<float>());  // the .npy member alone is fine
  const std::string garbage = numpy_file("garbage_member.npz");
  EXPECT_THAT([&] { (void)read_npz_member(garbage, "x"); },
              testing::ThrowsMessage<Error>(AllOf(StartsWith(garbage + "['x']: "), HasSubstr("bad magic"))));
}

TEST_F(NumpyInterop, NumpyReadsWhatQuantkitWrites) {
  const ScratchDir dir;
  NpzWriter stored(false);
  NpzWriter deflated(true);
  for_each_dtype([&]<class T>(T*, const std::string& name) {
    const std::vector<std::byte> data = bytes_of(expected_all<T>());
    write_npy(dir.file("cpp_" + name + ".npy"), dtype_of<T>(), {2, 3, 4}, data);
    stored.add(name, dtype_of<T>(), {2, 3, 4}, data);
    deflated.add(name, dtype_of<T>(), {2, 3, 4}, data);
  });
  stored.add_encoded("meta", encode_npy_string(kText));
  deflated.add_encoded("meta", encode_npy_string(kText));
  stored.write(dir.file("cpp_stored.npz"));
  deflated.write(dir.file("cpp_deflated.npz"));
  write_npy(dir.file("cpp_scalar.npy"), DType::kFloat64, {}, bytes_of(std::vector<double>{3.5}));
  write_npy(dir.file("cpp_empty.npy"), DType::kFloat32, {0, 3}, {});
  for (const auto& [file, text] :
       {std::pair{"cpp_string.npy", kText}, std::pair{"cpp_empty_string.npy", std::string()}}) {
    AtomicFile out(dir.file(file));
    out.write(encode_npy_string(text));
    out.commit();
  }
  EXPECT_EQ(run(quoted(python()) + " " + quoted(kScript) + " verify " + quoted(dir.path().string())), 0)
      << "numpy disagrees with what quantkit wrote (see its messages above)";
}

}  // namespace
}  // namespace qk::io
