// GGUF (io/gguf.hpp): the writer's exact bytes for a hand-checked file, round trips of every metadata
// type (arrays of arrays included) and of tensors of several ggml types with the alignment kept, and the
// reader refusing every kind of malformed file ggml refuses (and every truncation of a valid one) with a
// message naming the file and the problem. And tests/data/ggml/golden.gguf, written by ggml's own GGUF
// writer (tests/data/ggml/make_gguf_golden.c): read back key by key and tensor by tensor, and written again
// byte for byte from the same metadata and tensors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "io_test_util.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/io/gguf.hpp"

namespace qk::io {
namespace {

using test::ScratchDir;
using testing::HasSubstr;

// Little-endian byte builders for hand-made files.
struct Bytes {
  std::vector<std::byte> b;
  template <class T>
  Bytes& le(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    le<std::uint64_t>(s.size());
    for (const char c : s) b.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Bytes& raw(const std::string& s) {
    for (const char c : s) b.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Bytes& zeros(std::size_t n) {
    b.insert(b.end(), n, std::byte{0});
    return *this;
  }
};

template <class T>
GgufValue scalar(GgufType type, T v) {
  GgufValue g;
  g.type = type;
  g.raw.resize(sizeof(T));
  std::memcpy(g.raw.data(), &v, sizeof(T));
  return g;
}

template <class T>
GgufValue array(GgufType element, const std::vector<T>& v) {
  GgufValue g;
  g.type = GgufType::kArray;
  g.element = element;
  g.raw.resize(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(g.raw.data(), v.data(), g.raw.size());
  return g;
}

std::vector<std::byte> read_all(const std::string& path) { return test::read_bytes(path); }

// Writes metadata and tensors (data given whole per tensor) and returns the file's bytes.
std::vector<std::byte> write_file(const std::string& path,
                                  std::vector<std::pair<std::string, GgufValue>> metadata,
                                  const std::vector<GgufWriter::Info>& infos,
                                  const std::vector<std::vector<std::byte>>& data) {
  GgufWriter w(path, std::move(metadata), infos);
  for (const auto& d : data) w.write_data(d);
  w.commit();
  return read_all(path);
}

TEST(Gguf, WriterBytesForAMinimalFileAreTheFormatsOwn) {
  const ScratchDir dir;
  const std::vector<float> values{1.0f, -2.0f};
  const auto bytes = write_file(dir.file("m.gguf"), {{"general.architecture", GgufValue::of_string("test")}},
                                {{"w", {2}, kGgmlF32}}, {test::bytes_of(values)});
  Bytes expected;
  expected.raw("GGUF").le<std::uint32_t>(3).le<std::uint64_t>(1).le<std::uint64_t>(1);
  expected.str("general.architecture").le<std::uint32_t>(8).str("test");
  expected.str("w").le<std::uint32_t>(1).le<std::int64_t>(2).le<std::uint32_t>(0).le<std::uint64_t>(0);
  expected.zeros((32 - expected.b.size() % 32) % 32);  // the data section starts aligned to 32
  const std::size_t data_at = expected.b.size();
  expected.le(1.0f).le(-2.0f).zeros(24);  // the tensor, padded to 32 bytes
  EXPECT_EQ(bytes, expected.b);
  const GgufFile f = GgufFile::parse(bytes, "m.gguf");
  EXPECT_EQ(f.data_offset(), data_at);
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.tensors()[0].data.size(), 8u);
  EXPECT_EQ(std::memcmp(f.tensors()[0].data.data(), values.data(), 8), 0);
}

TEST(Gguf, EveryMetadataTypeAndTensorsRoundTripByteForByte) {
  const ScratchDir dir;
  GgufValue strings;
  strings.type = GgufType::kArray;
  strings.element = GgufType::kString;
  strings.strings = {"a", "", "üñí"};
  GgufValue nested;  // [[1, 2], [3]] of i32: arrays of arrays
  nested.type = GgufType::kArray;
  nested.element = GgufType::kArray;
  nested.arrays = {array<std::int32_t>(GgufType::kI32, {1, 2}), array<std::int32_t>(GgufType::kI32, {3})};
  std::vector<std::pair<std::string, GgufValue>> metadata = {
      {"u8", scalar<std::uint8_t>(GgufType::kU8, 200)},
      {"i8", scalar<std::int8_t>(GgufType::kI8, -100)},
      {"u16", scalar<std::uint16_t>(GgufType::kU16, 60000)},
      {"i16", scalar<std::int16_t>(GgufType::kI16, -30000)},
      {"u32", GgufValue::of_u32(4000000000u)},
      {"i32", GgufValue::of_i32(-2000000000)},
      {"f32", scalar<float>(GgufType::kF32, 0.25f)},
      {"bool", scalar<std::uint8_t>(GgufType::kBool, 1)},
      {"str", GgufValue::of_string("llama")},
      {"u64", scalar<std::uint64_t>(GgufType::kU64, 1ull << 40)},
      {"i64", scalar<std::int64_t>(GgufType::kI64, -(1ll << 40))},
      {"f64", scalar<double>(GgufType::kF64, -1.5)},
      {"floats", array<float>(GgufType::kF32, {1.0f, 2.0f, 3.0f})},
      {"strings", strings},
      {"nested", nested},
      {"general.alignment", GgufValue::of_u32(64)},
  };
  // Tensors of three types: F32 [3, 4] (ne {4, 3}), F16 [5], Q8_0 [2, 64] (2 x 2 blocks of 34 bytes).
  std::vector<std::byte> f32(48), f16(10), q8(4 * 34);
  for (std::size_t i = 0; i < q8.size(); ++i) q8[i] = static_cast<std::byte>(i * 7);
  for (std::size_t i = 0; i < f32.size(); ++i) f32[i] = static_cast<std::byte>(i);
  const std::vector<GgufWriter::Info> infos = {
      {"a.weight", {4, 3}, kGgmlF32}, {"b.bias", {5}, kGgmlF16}, {"c.weight", {64, 2}, 8}};
  const auto bytes = write_file(dir.file("m.gguf"), metadata, infos, {f32, f16, q8});
  const GgufFile f = GgufFile::open(dir.file("m.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  ASSERT_EQ(f.metadata().size(), metadata.size());
  for (std::size_t i = 0; i < metadata.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].first, metadata[i].first);
    EXPECT_EQ(f.metadata()[i].second.type, metadata[i].second.type);
    EXPECT_EQ(f.metadata()[i].second.raw, metadata[i].second.raw) << metadata[i].first;
    EXPECT_EQ(f.metadata()[i].second.strings, metadata[i].second.strings);
    EXPECT_EQ(f.metadata()[i].second.count(), metadata[i].second.count());
  }
  EXPECT_EQ(f.find("nested")->arrays.at(0).raw, nested.arrays[0].raw);
  EXPECT_EQ(f.find("str")->as_string("str"), "llama");
  EXPECT_EQ(f.find("u16")->as_uint("u16"), 60000u);
  EXPECT_EQ(f.find("i16")->summary(), "-30000");
  EXPECT_EQ(f.find("floats")->summary(), "[3 x f32]");
  EXPECT_THROW((void)f.find("i8")->as_uint("i8"), Error);  // negative
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.tensors()[0].shape(), (Shape{3, 4}));
  EXPECT_EQ(f.tensors()[2].shape(), (Shape{2, 64}));
  EXPECT_EQ(f.tensors()[2].type, 8u);
  EXPECT_EQ(std::vector<std::byte>(f.tensors()[2].data.begin(), f.tensors()[2].data.end()), q8);
  for (const GgufTensor& t : f.tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
  // What the reader gives back, written again, is the same file.
  std::vector<GgufWriter::Info> again_infos;
  std::vector<std::vector<std::byte>> again_data;
  for (const GgufTensor& t : f.tensors()) {
    again_infos.push_back({t.name, t.ne, t.type});
    again_data.emplace_back(t.data.begin(), t.data.end());
  }
  EXPECT_EQ(write_file(dir.file("again.gguf"), f.metadata(), again_infos, again_data), bytes);
}

TEST(Gguf, TypeTableMatchesGgml) {
  EXPECT_EQ(ggml_type_info(2)->block_bytes, 18);    // q4_0: fp16 d + 16 bytes
  EXPECT_EQ(ggml_type_info(12)->block_bytes, 144);  // q4_K
  EXPECT_EQ(ggml_type_info(14)->block_bytes, 210);  // q6_K
  EXPECT_EQ(ggml_type_by_name("Q4_K")->id, 12u);
  EXPECT_EQ(ggml_type_by_name("bf16")->id, kGgmlBF16);
  EXPECT_EQ(ggml_type_info(4), nullptr);  // q4_2, removed
  EXPECT_EQ(ggml_tensor_bytes(8, {64, 3}), 6u * 34u);
  EXPECT_THROW((void)ggml_tensor_bytes(8, {48, 3}), Error);  // rows of 48: not whole blocks of 32
}

TEST(Gguf, WriterRefusesWhatGgmlWouldNotRead) {
  const ScratchDir dir;
  const auto make = [&](std::vector<std::pair<std::string, GgufValue>> m, std::vector<GgufWriter::Info> t) {
    GgufWriter w(dir.file("x.gguf"), std::move(m), std::move(t));
  };
  EXPECT_THROW(make({{"k", GgufValue::of_u32(1)}, {"k", GgufValue::of_u32(2)}}, {}), Error);
  EXPECT_THROW(make({{"general.alignment", GgufValue::of_u32(48)}}, {}), Error);
  EXPECT_THROW(make({}, {{std::string(64, 'n'), {4}, kGgmlF32}}), Error);
  EXPECT_THROW(make({}, {{"a", {4}, kGgmlF32}, {"a", {4}, kGgmlF32}}), Error);
  EXPECT_THROW(make({}, {{"a", {48}, 2}}), Error);  // q4_0 rows of 48
  EXPECT_THROW(make({}, {{"a", {1, 1, 1, 1, 1}, kGgmlF32}}), Error);
  // Data that does not add up: nothing appears at the path.
  {
    GgufWriter w(dir.file("short.gguf"), {}, {{"a", {4}, kGgmlF32}});
    w.write_data(std::vector<std::byte>(8));
    EXPECT_THROW(w.commit(), Error);
    EXPECT_THROW(w.write_data(std::vector<std::byte>(16)), Error);
  }
  EXPECT_EQ(dir.entries(), std::set<std::string>{});
}

// A valid file to break: one metadata entry and two F32 tensors.
std::vector<std::byte> valid_file(const ScratchDir& dir) {
  return write_file(dir.file("v.gguf"), {{"general.name", GgufValue::of_string("v")}},
                    {{"a", {8}, kGgmlF32}, {"b", {4, 2}, kGgmlF32}},
                    {std::vector<std::byte>(32), std::vector<std::byte>(32)});
}

TEST(Gguf, EveryTruncationIsAnErrorNamingTheFile) {
  const ScratchDir dir;
  const std::vector<std::byte> bytes = valid_file(dir);
  ASSERT_NO_THROW((void)GgufFile::parse(bytes, "v.gguf"));
  // Both tensors are 32 bytes, so the file ends where b's data ends: every shorter prefix lacks something.
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::span<const std::byte> prefix(bytes.data(), n);
    try {
      (void)GgufFile::parse(prefix, "cut.gguf");
      ADD_FAILURE() << "a file cut to " << n << " bytes was accepted";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), testing::StartsWith("cut.gguf: ")) << n;
    }
  }
}

TEST(Gguf, MalformedFilesAreRefusedWithTheProblem) {
  const auto header = [](std::uint32_t version, std::uint64_t tensors, std::uint64_t kv) {
    Bytes b;
    b.raw("GGUF").le(version).le(tensors).le(kv);
    return b;
  };
  const auto tensor = [](Bytes& b, const std::string& name, std::vector<std::int64_t> ne, std::uint32_t type,
                         std::uint64_t offset) {
    b.str(name).le<std::uint32_t>(static_cast<std::uint32_t>(ne.size()));
    for (const auto d : ne) b.le(d);
    b.le(type).le(offset);
  };
  struct Case {
    std::string name;
    Bytes bytes;
    std::string phrase;
  };
  std::vector<Case> cases;
  {
    Bytes b;
    b.raw("GGUX").zeros(20);
    cases.push_back({"magic", b, "the magic is not 'GGUF'"});
  }
  cases.push_back({"v1", header(1, 0, 0), "version 1 is not supported"});
  cases.push_back({"swapped", header(0x03000000, 0, 0), "byte-swapped"});
  cases.push_back({"kv count", header(3, 0, 1ull << 60), "more than the file can hold"});
  cases.push_back({"tensor count", header(3, 1ull << 60, 0), "more than the file can hold"});
  {
    Bytes b = header(3, 0, 1);
    b.le<std::uint64_t>(1ull << 40).raw("k").zeros(64);
    cases.push_back({"long key", b, "exceeds ggml's limit"});
  }
  {
    Bytes b = header(3, 0, 1);
    b.str("k").le<std::uint32_t>(13).zeros(8);
    cases.push_back({"value type", b, "unknown value type 13"});
  }
  {
    Bytes b = header(3, 0, 2);
    b.str("k").le<std::uint32_t>(4).le<std::uint32_t>(1).str("k").le<std::uint32_t>(4).le<std::uint32_t>(2);
    cases.push_back({"key twice", b, "'k' appears twice"});
  }
  {
    Bytes b = header(3, 0, 1);
    b.str("").le<std::uint32_t>(4).le<std::uint32_t>(1);
    cases.push_back({"empty key", b, "is empty"});
  }
  {
    Bytes b = header(3, 0, 1);
    b.str("\xff\xfe").le<std::uint32_t>(4).le<std::uint32_t>(1);
    cases.push_back({"utf8 key", b, "not valid UTF-8"});
  }
  {
    Bytes b = header(3, 0, 1);
    b.str("a").le<std::uint32_t>(9).le<std::uint32_t>(4).le<std::uint64_t>(1ull << 31);
    cases.push_back({"huge array", b, "exceeds ggml's limit"});
  }
  {
    Bytes b = header(3, 0, 1);
    b.str("a").le<std::uint32_t>(9).le<std::uint32_t>(8).le<std::uint64_t>(1000000);
    cases.push_back({"array past end", b, "runs past the end of the file"});
  }
  {
    Bytes b = header(3, 0, 1);
    b.str("general.alignment").le<std::uint32_t>(4).le<std::uint32_t>(24);
    cases.push_back({"alignment", b, "not a power of 2"});
  }
  {
    Bytes b = header(3, 0, 1);
    b.str("general.alignment").le<std::uint32_t>(10).le<std::uint64_t>(32);
    cases.push_back({"alignment type", b, "must be u32"});
  }
  {
    Bytes b = header(3, 1, 0);
    tensor(b, "w", {32}, 77, 0);
    b.zeros(200);
    cases.push_back({"ggml type", b, "unknown ggml type 77"});
  }
  {
    Bytes b = header(3, 1, 0);
    tensor(b, "w", {48}, 2, 0);
    b.zeros(200);
    cases.push_back({"block", b, "multiple of 32"});
  }
  {
    Bytes b = header(3, 1, 0);
    tensor(b, "w", {1, 1, 1, 1, 1}, 0, 0);
    b.zeros(200);
    cases.push_back({"dims", b, "5 dimensions"});
  }
  {
    Bytes b = header(3, 1, 0);
    tensor(b, "w", {-4}, 0, 0);
    b.zeros(200);
    cases.push_back({"negative", b, "is negative"});
  }
  {
    Bytes b = header(3, 1, 0);
    tensor(b, "w", {1ll << 40, 1ll << 40}, 0, 0);
    b.zeros(200);
    cases.push_back({"overflow", b, "overflows"});
  }
  {
    Bytes b = header(3, 1, 0);
    tensor(b, std::string(64, 'n'), {4}, 0, 0);
    b.zeros(200);
    cases.push_back({"long name", b, "ggml's limit is 63"});
  }
  {
    Bytes b = header(3, 1, 0);
    tensor(b, "\xc3\x28", {4}, 0, 0);
    b.zeros(200);
    cases.push_back({"utf8 name", b, "not valid UTF-8"});
  }
  {
    Bytes b = header(3, 2, 0);
    tensor(b, "w", {4}, 0, 0);
    tensor(b, "w", {4}, 0, 32);
    b.zeros(200);
    cases.push_back({"name twice", b, "'w' appears twice"});
  }
  {
    Bytes b = header(3, 2, 0);
    tensor(b, "a", {4}, 0, 0);
    tensor(b, "b", {4}, 0, 64);  // a gap: b should start at 32
    b.zeros(200);
    cases.push_back({"gap", b, "has offset 64, expected 32"});
  }
  {
    Bytes b = header(3, 2, 0);
    tensor(b, "a", {16}, 0, 0);
    tensor(b, "b", {4}, 0, 32);  // overlaps a's 64 bytes
    b.zeros(200);
    cases.push_back({"overlap", b, "has offset 32, expected 64"});
  }
  {
    Bytes b = header(3, 1, 0);
    tensor(b, "a", {1024}, 0, 0);
    b.zeros(100);
    cases.push_back({"past end", b, "runs past the end of the file"});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    try {
      (void)GgufFile::parse(c.bytes.b, "bad.gguf");
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), testing::StartsWith("bad.gguf: "));
      EXPECT_THAT(e.what(), HasSubstr(c.phrase));
    }
  }
}

// The fuzzer's seed corpus is valid, so the fuzzer starts from files the reader accepts.
TEST(Gguf, SeedCorpusFilesAreValid) {
  const std::filesystem::path corpus = std::filesystem::path(QK_SOURCE_DIR) / "tests/fuzz/corpus/gguf";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    EXPECT_NO_THROW((void)GgufFile::open(entry.path().string())) << entry.path();
    ++files;
  }
  EXPECT_EQ(files, 3);
  const GgufFile types = GgufFile::open((corpus / "types.gguf").string());
  EXPECT_EQ(types.find("nested")->arrays.size(), 1u);
  EXPECT_EQ(types.tensors().size(), 3u);
  EXPECT_EQ(GgufFile::open((corpus / "aligned64.gguf").string()).alignment(), 64u);
}

// tests/data/ggml/golden.gguf: what ggml's gguf_write_to_file made (make_gguf_golden.c, README.md there).
std::string golden_gguf() { return std::string(QK_SOURCE_DIR) + "/tests/data/ggml/golden.gguf"; }

GgufValue strings_array(std::vector<std::string> v) {
  GgufValue g;
  g.type = GgufType::kArray;
  g.element = GgufType::kString;
  g.strings = std::move(v);
  return g;
}

// The metadata make_gguf_golden.c sets, in its order.
std::vector<std::pair<std::string, GgufValue>> golden_metadata() {
  return {
      {"general.architecture", GgufValue::of_string("golden")},
      {"general.name", GgufValue::of_string("quantkit golden \xc3\xa9\xe2\x82\xac")},
      {"test.u8", scalar<std::uint8_t>(GgufType::kU8, 200)},
      {"test.i8", scalar<std::int8_t>(GgufType::kI8, -100)},
      {"test.u16", scalar<std::uint16_t>(GgufType::kU16, 60000)},
      {"test.i16", scalar<std::int16_t>(GgufType::kI16, -30000)},
      {"test.u32", GgufValue::of_u32(4000000000u)},
      {"test.i32", GgufValue::of_i32(-2000000000)},
      {"test.f32", scalar<float>(GgufType::kF32, 0.1f)},
      {"test.u64", scalar<std::uint64_t>(GgufType::kU64, 18000000000000000000ull)},
      {"test.i64", scalar<std::int64_t>(GgufType::kI64, -9000000000000000000ll)},
      {"test.f64", scalar<double>(GgufType::kF64, -2.718281828459045)},
      {"test.bool_true", scalar<std::uint8_t>(GgufType::kBool, 1)},
      {"test.bool_false", scalar<std::uint8_t>(GgufType::kBool, 0)},
      {"test.empty_string", GgufValue::of_string("")},
      {"test.arr_u8", array<std::uint8_t>(GgufType::kU8, {0, 1, 255})},
      {"test.arr_i8", array<std::int8_t>(GgufType::kI8, {-128, 0, 127})},
      {"test.arr_u16", array<std::uint16_t>(GgufType::kU16, {0, 65535})},
      {"test.arr_i16", array<std::int16_t>(GgufType::kI16, {-32768, 32767})},
      {"test.arr_u32", array<std::uint32_t>(GgufType::kU32, {1, 2, 3, 4294967295u})},
      {"test.arr_i32", array<std::int32_t>(GgufType::kI32, {-1, 0, 2147483647})},
      {"test.arr_f32", array<float>(GgufType::kF32, {1.5f, -0.0f, 3.25e-5f})},
      {"test.arr_u64", array<std::uint64_t>(GgufType::kU64, {0, 18446744073709551615ull})},
      {"test.arr_i64", array<std::int64_t>(GgufType::kI64, {-1, 9223372036854775807ll})},
      {"test.arr_f64", array<double>(GgufType::kF64, {1e300, -1e-300, 0.5})},
      {"test.arr_bool", array<std::uint8_t>(GgufType::kBool, {1, 0, 1, 1})},
      {"test.arr_empty_i32", array<std::int32_t>(GgufType::kI32, {})},
      {"test.arr_str", strings_array({"alpha", "", "gamma \xce\xb3", "<s>"})},
  };
}

// One golden tensor: its info, the floats make_gguf_golden.c made (quantized ones before quantizing), and
// what ggml's check_gguf.c printed for it (ggml's to_float: sum and sum of squares in double, first value).
struct GoldenTensor {
  GgufWriter::Info info;
  std::vector<float> values;
  double sum, sum_squares;
  float first;
};

std::vector<GoldenTensor> golden_tensors() {
  std::uint32_t state = 2463534242u;  // make_gguf_golden.c's xorshift32
  auto fill = [&](std::size_t n, float scale) {
    std::vector<float> v(n);
    for (float& x : v) {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      x = scale * (static_cast<float>(state >> 8) / 8388608.0f - 1.0f);
    }
    return v;
  };
  const auto q8_0 = static_cast<std::uint32_t>(ggml::Type::kQ8_0);
  const auto q4_0 = static_cast<std::uint32_t>(ggml::Type::kQ4_0);
  const auto q4_k = static_cast<std::uint32_t>(ggml::Type::kQ4_K);
  std::vector<GoldenTensor> t;
  t.push_back({{"f32.vector", {5}, kGgmlF32},
               fill(5, 1.0f),
               0.040938258171081543,
               0.88781964813448155,
               -0.663107276f});
  t.push_back({{"f32.cube", {3, 2, 2}, kGgmlF32},
               fill(12, 10.0f),
               -14.205504179000854,
               306.79107512315562,
               -8.25789547f});
  t.push_back(
      {{"f16.matrix", {4, 3}, kGgmlF16}, fill(12, 2.0f), 1.23388671875, 18.619336009025574, -0.447998047f});
  t.push_back({{"blk.0.q8_0.weight", {64, 2}, q8_0},
               fill(128, 0.5f),
               -1.1506729125976562,
               11.602318368604756,
               -0.0509796143f});
  t.push_back(
      {{"blk.0.q4_0.weight", {32, 3}, q4_0}, fill(96, 3.0f), 2.9560546875, 323.04712963104248, 1.10961914f});
  t.push_back({{"blk.1.q4_K.weight", {256, 2}, q4_k},
               fill(512, 0.25f),
               -1.4462637901306152,
               10.442597721313859,
               -0.0536851883f});
  return t;
}

TEST(Gguf, ReadsGgmlsGoldenFileKeyByKeyAndTensorByTensor) {
  const GgufFile f = GgufFile::open(golden_gguf());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset(), 1440u);  // ggml's gguf_get_data_offset
  const auto metadata = golden_metadata();
  ASSERT_EQ(f.metadata().size(), metadata.size());
  for (std::size_t i = 0; i < metadata.size(); ++i) {
    const auto& [key, value] = f.metadata()[i];
    EXPECT_EQ(key, metadata[i].first);
    EXPECT_EQ(value.type, metadata[i].second.type) << key;
    EXPECT_EQ(value.element, metadata[i].second.element) << key;
    EXPECT_EQ(value.raw, metadata[i].second.raw) << key;
    EXPECT_EQ(value.strings, metadata[i].second.strings) << key;
    EXPECT_EQ(value.count(), metadata[i].second.count()) << key;
  }
  EXPECT_EQ(f.find("general.name")->as_string("general.name"), "quantkit golden \xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(f.find("test.u64")->as_uint("test.u64"), 18000000000000000000ull);

  const auto golden = golden_tensors();
  ASSERT_EQ(f.tensors().size(), golden.size());
  const std::vector<std::uint64_t> offsets{0, 32, 96, 128, 288, 352};  // ggml's gguf_get_tensor_offset
  for (std::size_t i = 0; i < golden.size(); ++i) {
    const GgufTensor& t = f.tensors()[i];
    const GoldenTensor& g = golden[i];
    SCOPED_TRACE(g.info.name);
    EXPECT_EQ(t.name, g.info.name);
    EXPECT_EQ(t.ne, g.info.ne);
    EXPECT_EQ(t.type, g.info.type);
    EXPECT_EQ(t.offset, offsets[i]);
    const auto type = static_cast<ggml::Type>(t.type);
    // The bytes: what ggml made of the same floats (quantkit's converters and quantizers are bit-exact
    // with ggml's; Q4_K has no quantkit quantizer, so its bytes are checked through their values below).
    ASSERT_EQ(t.data.size(), ggml_tensor_bytes(t.type, t.ne));
    if (ggml::traits(type).can_quantize) {
      std::vector<std::byte> expected(t.data.size());
      ggml::quantize_row(type, g.values.data(), static_cast<std::int64_t>(g.values.size()), expected.data());
      EXPECT_EQ(std::vector<std::byte>(t.data.begin(), t.data.end()), expected);
    }
    // The values: quantkit's dequantization of ggml's bytes gives the sums ggml's own to_float gave.
    std::vector<float> values(g.values.size());
    ggml::dequantize_row(type, t.data.data(), static_cast<std::int64_t>(values.size()), values.data());
    double sum = 0.0, sum_squares = 0.0;
    for (const float v : values) {
      sum += v;
      sum_squares += static_cast<double>(v) * v;
    }
    EXPECT_EQ(sum, g.sum);
    EXPECT_EQ(sum_squares, g.sum_squares);
    EXPECT_EQ(values[0], g.first);
  }
}

TEST(Gguf, WriterGivenGgmlsMetadataAndTensorsWritesGgmlsBytes) {
  const ScratchDir dir;
  const GgufFile golden = GgufFile::open(golden_gguf());
  std::vector<GgufWriter::Info> infos;
  std::vector<std::vector<std::byte>> data;
  for (const GoldenTensor& g : golden_tensors()) {
    infos.push_back(g.info);
    const GgufTensor& t = golden.tensors()[infos.size() - 1];
    data.emplace_back(t.data.begin(), t.data.end());
  }
  EXPECT_EQ(write_file(dir.file("golden.gguf"), golden_metadata(), infos, data), read_all(golden_gguf()));
}

}  // namespace
}  // namespace qk::io
