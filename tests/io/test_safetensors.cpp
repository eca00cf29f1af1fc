// safetensors (io/safetensors.hpp): the writer's exact bytes for a hand-checked file, round trips over
// every dtype, float conversion, and the reader refusing each kind of malformed file the reference
// implementation refuses, with a message naming the file and the problem. numpy reads what we write
// (the header's JSON and np.frombuffer on the data section: the format's own definition).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "io_test_util.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/io/safetensors.hpp"

namespace qk::io {
namespace {

using test::ScratchDir;
using testing::HasSubstr;

template <class T>
std::span<const std::byte> raw(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

// A file from a header text and a data section: the 8-byte length, the text, the data.
std::vector<std::byte> file_of(const std::string& header, const std::vector<std::byte>& data = {}) {
  std::vector<std::byte> out(8);
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  for (const char c : header) out.push_back(static_cast<std::byte>(c));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::vector<std::byte> zeros(std::size_t n) { return std::vector<std::byte>(n); }

TEST(Safetensors, WriterBytesForOneTensorAreTheFormatsOwn) {
  SafetensorsWriter w;
  const std::vector<float> values{1.0f, -2.5f};
  w.add("a", StDType::kF32, {2}, raw(values));
  const std::vector<std::byte> bytes = w.encode();
  // 54 bytes of JSON (keys sorted), padded with 2 spaces to 56, then 8 bytes of data.
  const std::string header = R"({"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}})";
  ASSERT_EQ(header.size(), 54u);
  std::vector<std::byte> expected = file_of(header + "  ");
  const auto data = raw(values);
  expected.insert(expected.end(), data.begin(), data.end());
  EXPECT_EQ(bytes, expected);
}

TEST(Safetensors, RoundTripKeepsEveryDtypeShapeAndMetadata) {
  SafetensorsWriter w;
  const std::vector<float> f32{1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 7.0f};
  const std::vector<std::uint16_t> bf16{0x3f80, 0xc000, 0x7f80, 0x0001};  // 1, -2, +Inf, smallest subnormal
  const std::vector<std::uint16_t> f16{0x3c00, 0xbc00, 0x0001};           // 1, -1, smallest subnormal
  const std::vector<std::int64_t> step{42};
  const std::vector<std::uint8_t> e4m3{0x38, 0xb8, 0x7e};  // 1, -1, 448
  const std::vector<double> f64{0.1, -1e300};
  const std::vector<std::uint8_t> flags{1, 0, 1};
  w.add("layer.weight", StDType::kF32, {2, 3}, raw(f32));
  w.add("emb", StDType::kBF16, {4}, raw(bf16));
  w.add("half", StDType::kF16, {3}, raw(f16));
  w.add("step", StDType::kI64, {}, raw(step));
  w.add("fp8", StDType::kF8E4M3, {3}, raw(e4m3));
  w.add("big", StDType::kF64, {2}, raw(f64));
  w.add("mask", StDType::kBool, {3}, raw(flags));
  w.add("empty", StDType::kU8, {0, 5}, {});
  w.set_metadata({{"format", "pt"}, {"note", "h\xc3\xa9llo"}});
  const std::vector<std::byte> bytes = w.encode();
  const SafetensorsFile f = SafetensorsFile::parse(bytes, "mem.safetensors");
  EXPECT_EQ(f.header_bytes() % 8, 0u);
  EXPECT_EQ(f.metadata().at("note"), "h\xc3\xa9llo");
  // Data-section order: element size, largest first, then name; every tensor aligned to its element size.
  std::vector<std::string> order;
  for (const StTensor& t : f.tensors()) {
    order.push_back(t.name);
    EXPECT_EQ(t.begin % st_dtype_size(t.dtype), 0u) << t.name;
  }
  EXPECT_EQ(order, (std::vector<std::string>{"big", "step", "layer.weight", "emb", "half", "empty", "fp8", "mask"}));
  EXPECT_EQ(f.tensor("layer.weight").shape, (Shape{2, 3}));
  EXPECT_EQ(f.tensor("step").shape, Shape{});
  EXPECT_EQ(f.tensor("empty").numel(), 0);
  EXPECT_EQ(st_to_float(f.tensor("layer.weight")), f32);
  const std::vector<float> emb = st_to_float(f.tensor("emb"));
  EXPECT_EQ(emb[0], 1.0f);
  EXPECT_EQ(emb[1], -2.0f);
  EXPECT_TRUE(std::isinf(emb[2]));
  EXPECT_EQ(emb[3], std::ldexp(1.0f, -133));
  EXPECT_EQ(st_to_float(f.tensor("half")), (std::vector<float>{1.0f, -1.0f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(st_to_float(f.tensor("fp8")), (std::vector<float>{1.0f, -1.0f, 448.0f}));
  EXPECT_EQ(st_to_float(f.tensor("big")), (std::vector<float>{0.1f, -INFINITY}));
  std::int64_t s = 0;
  std::memcpy(&s, f.tensor("step").data.data(), 8);
  EXPECT_EQ(s, 42);
  EXPECT_THROW((void)st_to_float(f.tensor("step")), Error);
  try {
    (void)f.tensor("missing");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("mem.safetensors: no tensor named 'missing'"));
  }
}

TEST(Safetensors, WriterRefusesWhatCannotBeWritten) {
  SafetensorsWriter w;
  const std::vector<float> two{1.0f, 2.0f};
  EXPECT_THROW(w.add("x", StDType::kF32, {3}, raw(two)), Error);  // 8 bytes for 12
  w.add("x", StDType::kF32, {2}, raw(two));
  EXPECT_THROW(w.add("x", StDType::kF32, {2}, raw(two)), Error);
  EXPECT_THROW(w.add("__metadata__", StDType::kF32, {2}, raw(two)), Error);
  w.add("bad\xff", StDType::kF32, {2}, raw(two));
  EXPECT_THROW((void)w.encode(), Error);  // a name that is not UTF-8
}

TEST(Safetensors, FileWriteIsAtomicAndReadsBackMapped) {
  const ScratchDir dir;
  const std::string path = dir.file("m.safetensors");
  SafetensorsWriter w;
  const std::vector<float> v{1, 2, 3, 4};
  w.add("w", StDType::kF32, {2, 2}, raw(v));
  w.write(path);
  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(st_to_float(f.tensor("w")), v);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);  // no temporary left
  try {
    (void)SafetensorsFile::open(dir.file("missing.safetensors"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing.safetensors: cannot open"));
  }
}

// The writer that spills each tensor to an unnamed temporary file (whole models) writes the same bytes
// as the one that keeps them in memory, in the same order, pieces larger than its copy buffer included,
// and leaves no file behind but the output.
TEST(Safetensors, SpillingWriterWritesTheSameBytes) {
  const ScratchDir dir;
  std::vector<float> big((std::size_t{9} << 20) / 4);  // 9 MiB: more than one 8 MiB copy piece
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i % 1000) * 0.5f;
  const std::vector<std::int8_t> codes{1, -2, 3};
  const std::vector<std::uint16_t> halves{0x3c00, 0xbc00};
  SafetensorsWriter memory, spilled(dir.path().string());
  for (SafetensorsWriter* w : {&memory, &spilled}) {
    w->add("z.codes", StDType::kI8, {3}, raw(codes));
    w->add("a.big", StDType::kF32, {static_cast<std::int64_t>(big.size())}, raw(big));
    w->add("h", StDType::kF16, {2}, raw(halves));
    w->set_metadata({{"format", "pt"}});
  }
  EXPECT_EQ(spilled.encode(), memory.encode());
  spilled.write(dir.file("s.safetensors"));
  memory.write(dir.file("m.safetensors"));
  EXPECT_EQ(test::read_bytes(dir.file("s.safetensors")), test::read_bytes(dir.file("m.safetensors")));
  EXPECT_EQ(dir.entries(), (std::set<std::string>{"m.safetensors", "s.safetensors"}));
  EXPECT_THAT(
      [] { SafetensorsWriter w("/nonexistent-folder"); },
      testing::ThrowsMessage<Error>(HasSubstr("/nonexistent-folder: cannot create a temporary file")));
}

// One malformed file per check of the reference reader; each is refused naming the file and the problem.
TEST(Safetensors, MalformedFilesAreRefusedWithTheProblem) {
  const std::string t4 = R"("dtype":"F32","shape":[1])";  // a 4-byte tensor, offsets to be added
  std::vector<std::byte> huge_length(8);
  huge_length[3] = std::byte{0x10};  // 268,435,456 > 100,000,000
  std::vector<std::byte> past_end = file_of("{}");
  past_end[0] = std::byte{50};
  const struct {
    std::vector<std::byte> bytes;
    std::string problem;
  } cases[] = {
      {std::vector<std::byte>(4), "shorter than the 8-byte header length"},
      {huge_length, "exceeds the limit of 100000000 bytes"},
      {past_end, "runs past the end of the file"},
      {file_of("{"), "not valid JSON"},
      {file_of("[1, 2]"), "not a JSON object"},
      {file_of("{\"w\xff\": {" + t4 + ",\"data_offsets\":[0,4]}}", zeros(4)), "not valid JSON"},
      {file_of(R"({"a":{)" + t4 + R"(,"data_offsets":[0,4]},"a":{)" + t4 + R"(,"data_offsets":[0,4]}})", zeros(4)),
       "names 'a' twice"},
      {file_of(R"({"a":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}})", zeros(4)), "unknown safetensors dtype 'F7'"},
      {file_of(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", zeros(4)), "tensor 'a': no \"shape\""},
      {file_of(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", zeros(4)), "not a non-negative integer"},
      {file_of(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", zeros(4)), "not a non-negative integer"},
      {file_of(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}})", zeros(4)),
       "element count overflows"},
      {file_of(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}})", zeros(4)),
       "byte count overflows"},
      {file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", zeros(4)), "need 8"},
      {file_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", zeros(4)), "end before they begin"},
      {file_of(R"({"a":{)" + t4 + R"(,"data_offsets":[0,4]},"b":{)" + t4 + R"(,"data_offsets":[8,12]}})", zeros(12)),
       "a gap"},
      {file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{)" + t4 + R"(,"data_offsets":[4,8]}})",
               zeros(8)),
       "overlaps"},
      {file_of(R"({"a":{)" + t4 + R"(,"data_offsets":[0,4]}})", zeros(2)), "past the data section's 2 bytes"},
      {file_of(R"({"a":{)" + t4 + R"(,"data_offsets":[0,4]}})", zeros(6)), "the data section holds 6 bytes"},
      {file_of(R"({"__metadata__":{"k":1}})"), "value of 'k' is not a string"},
      {file_of(R"({"a":[1]})"), "tensor 'a': not an object"},
  };
  for (const auto& c : cases) {
    try {
      (void)SafetensorsFile::parse(c.bytes, "bad.safetensors");
      ADD_FAILURE() << "accepted; expected: " << c.problem;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("bad.safetensors: ")) << c.problem;
      EXPECT_THAT(e.what(), HasSubstr(c.problem));
    }
  }
  // What the reference accepts: no tensors at all, a null __metadata__, header padding, unknown fields.
  EXPECT_TRUE(SafetensorsFile::parse(file_of("{}"), "ok").tensors().empty());
  EXPECT_TRUE(SafetensorsFile::parse(file_of(R"({"__metadata__":null}   )"), "ok").metadata().empty());
  EXPECT_EQ(SafetensorsFile::parse(file_of(R"({"a":{)" + t4 + R"(,"data_offsets":[0,4],"x":1}})", zeros(4)), "ok")
                .tensors()
                .size(),
            1u);
}

// The fuzzer's seed corpus is valid, so the fuzzer starts from files the reader accepts.
TEST(Safetensors, SeedCorpusFilesAreValid) {
  const std::filesystem::path corpus = std::filesystem::path(QK_SOURCE_DIR) / "tests/fuzz/corpus/safetensors";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    const SafetensorsFile f = SafetensorsFile::open(entry.path().string());
    for (const StTensor& t : f.tensors())
      if (st_dtype_is_float(t.dtype)) EXPECT_NO_THROW((void)st_to_float(t)) << entry.path();
    ++files;
  }
  EXPECT_GE(files, 3);
  const SafetensorsFile all = SafetensorsFile::open((corpus / "dtypes.safetensors").string());
  EXPECT_EQ(all.tensors().size(), 11u);
  EXPECT_EQ(st_to_float(all.tensor("e5")), (std::vector<float>{1.0f, 57344.0f}));
  EXPECT_EQ(st_to_float(all.tensor("b")), (std::vector<float>{1.0f, -2.0f}));
}

int run(const std::string& command) {
  const int status = std::system(command.c_str());
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// numpy reads what we write with nothing but the format's definition: the header's JSON, then
// np.frombuffer over each tensor's data_offsets.
TEST(Safetensors, NumpyReadsWhatWeWrite) {
  const std::string python = std::getenv("QK_PYTHON3") ? std::getenv("QK_PYTHON3") : QK_NUMPY_PYTHON;
  if (python.empty()) GTEST_SKIP() << "no python3 with numpy";
  const ScratchDir dir;
  SafetensorsWriter w;
  const std::vector<float> f32{0.5f, -1.25f, 3.0f, 1e-8f, 2.0f, -7.5f};
  const std::vector<std::int8_t> i8{-128, 0, 127};
  const std::vector<std::uint16_t> f16{half(0.5f).bits, half(-3.0f).bits};
  w.add("w", StDType::kF32, {2, 3}, raw(f32));
  w.add("codes", StDType::kI8, {3}, raw(i8));
  w.add("h", StDType::kF16, {2}, raw(f16));
  w.set_metadata({{"w", "{\"bits\": 8}"}});
  w.write(dir.file("m.safetensors"));
  const std::string script = R"(
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
types = {"F32": "<f4", "I8": "i1", "F16": "<f2"}
def get(name):
    t = header[name]
    b, e = t["data_offsets"]
    return np.frombuffer(data[b:e], dtype=types[t["dtype"]]).reshape(t["shape"])
assert n % 8 == 0
assert header["__metadata__"] == {"w": "{\"bits\": 8}"}
assert get("w").tolist() == np.array([[0.5, -1.25, 3.0], [1e-8, 2.0, -7.5]], dtype=np.float32).tolist()
assert get("codes").tolist() == [-128, 0, 127]
assert get("h").tolist() == [0.5, -3.0]
)";
  const std::string script_path = dir.file("read.py");
  std::ofstream(script_path) << script;
  EXPECT_EQ(run(python + " " + script_path + " " + dir.file("m.safetensors")), 0);
}

}  // namespace
}  // namespace qk::io
