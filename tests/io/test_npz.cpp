// .npz: stored and deflated round trips, corrupt and truncated archives, missing members, atomic writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include "io_test_util.hpp"
#include "quantkit/io/npz.hpp"

namespace qk::io {
namespace {

using test::ScratchDir;
using testing::HasSubstr;
using testing::StartsWith;

const std::vector<float> kWeights = {0.5f, -1.25f, 3.0f, 7.5f, -0.0f, 2.0f};
const std::vector<std::int32_t> kZeroPoints = {0, -3, 127};
const std::vector<std::uint8_t> kZeros(100000, 0);

NpzWriter sample_writer(bool compress) {
  NpzWriter writer(compress);
  writer.add<float>("weights", {2, 3}, kWeights);
  writer.add<std::int32_t>("zero_point", {3}, kZeroPoints);
  writer.add<std::uint8_t>("zeros", {100, 1000}, kZeros);
  writer.add_encoded("meta", encode_npy_string("{\"format\": \"quantkit.qtensor/1\"}"));
  writer.add<double>("scalar", {}, std::vector<double>{2.5});
  writer.add<std::int8_t>("empty", {0, 4}, std::span<const std::int8_t>());
  return writer;
}

void expect_sample_arrays(const std::map<std::string, NpyArray>& arrays) {
  ASSERT_EQ(arrays.size(), 6u);
  EXPECT_EQ(arrays.at("weights").shape(), (Shape{2, 3}));
  EXPECT_EQ(arrays.at("weights").to_vector<float>(), kWeights);
  EXPECT_EQ(arrays.at("zero_point").to_vector<std::int32_t>(), kZeroPoints);
  EXPECT_EQ(arrays.at("zeros").dtype(), DType::kUint8);
  EXPECT_EQ(arrays.at("zeros").to_vector<std::uint8_t>(), kZeros);
  EXPECT_EQ(arrays.at("meta").as_string(), "{\"format\": \"quantkit.qtensor/1\"}");
  EXPECT_EQ(arrays.at("scalar").to_vector<double>(), std::vector<double>{2.5});
  EXPECT_EQ(arrays.at("empty").shape(), (Shape{0, 4}));
}

class NpzRoundTrip : public testing::TestWithParam<bool> {};

TEST_P(NpzRoundTrip, WriteThenRead) {
  const bool compress = GetParam();
  const ScratchDir dir;
  const std::string path = dir.file("a.npz");
  sample_writer(compress).write(path);
  EXPECT_EQ(dir.entries(), std::set<std::string>{"a.npz"});

  EXPECT_EQ(npz_names(path),
            (std::vector<std::string>{"weights", "zero_point", "zeros", "meta", "scalar", "empty"}));
  expect_sample_arrays(read_npz(path));
  const std::vector<std::byte> bytes = test::read_bytes(path);
  expect_sample_arrays(read_npz_bytes(bytes, "mem.npz"));

  const NpyArray w = read_npz_member(path, "weights");
  EXPECT_EQ(w.name(), path + "['weights']");
  EXPECT_EQ(w.to_vector<float>(), kWeights);
  EXPECT_EQ(read_npz_member(path, "meta").as_string(), "{\"format\": \"quantkit.qtensor/1\"}");

  // Deflate shrinks the 100000 zero bytes; storing keeps them.
  if (compress) {
    EXPECT_LT(bytes.size(), 10000u);
  } else {
    EXPECT_GT(bytes.size(), 100000u);
  }
}

TEST_P(NpzRoundTrip, SameArraysGiveTheSameBytes) {
  const ScratchDir dir;
  sample_writer(GetParam()).write(dir.file("1.npz"));
  sample_writer(GetParam()).write(dir.file("2.npz"));
  EXPECT_EQ(test::read_bytes(dir.file("1.npz")), test::read_bytes(dir.file("2.npz")));
}

INSTANTIATE_TEST_SUITE_P(StoredAndDeflated, NpzRoundTrip, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& info) {
                           return info.param ? "Deflated" : "Stored";
                         });

TEST(Npz, EmptyArchive) {
  const ScratchDir dir;
  NpzWriter().write(dir.file("e.npz"));
  EXPECT_EQ(test::read_bytes(dir.file("e.npz")).size(), 22u);  // just the end-of-central-directory record
  EXPECT_TRUE(npz_names(dir.file("e.npz")).empty());
  EXPECT_TRUE(read_npz(dir.file("e.npz")).empty());
}

TEST(Npz, OverwritesAnExistingArchive) {
  const ScratchDir dir;
  const std::string path = dir.file("o.npz");
  sample_writer(true).write(path);
  NpzWriter small;
  small.add<float>("only", {1}, std::vector<float>{4.0f});
  small.write(path);
  EXPECT_EQ(npz_names(path), std::vector<std::string>{"only"});
  EXPECT_EQ(dir.entries(), std::set<std::string>{"o.npz"});
}

TEST(Npz, MissingMemberNamesArchiveAndMember) {
  const ScratchDir dir;
  const std::string path = dir.file("m.npz");
  sample_writer(false).write(path);
  EXPECT_THAT([&] { (void)read_npz_member(path, "scale"); },
              testing::ThrowsMessage<Error>(
                  AllOf(StartsWith(path + ": "), HasSubstr("no member 'scale'"), HasSubstr("weights.npy"))));
}

TEST(Npz, WriterRejectsDuplicatesAndInconsistentMembers) {
  NpzWriter writer;
  writer.add<float>("a", {1}, std::vector<float>{1.0f});
  EXPECT_THAT([&] { writer.add<float>("a", {1}, std::vector<float>{1.0f}); },
              testing::ThrowsMessage<Error>(HasSubstr("member 'a' added twice")));
  std::vector<std::byte> npy = encode_npy_string("x");
  npy.pop_back();
  EXPECT_THAT([&] { writer.add_encoded("bad", npy); },
              testing::ThrowsMessage<Error>(HasSubstr("truncated data")));
}

TEST(Npz, WritingIntoAMissingFolderFailsCleanly) {
  const ScratchDir dir;
  const std::string path = dir.file("missing/a.npz");
  EXPECT_THAT([&] { sample_writer(false).write(path); },
              testing::ThrowsMessage<Error>(
                  AllOf(StartsWith(path + ": "), HasSubstr("cannot create a temporary file"))));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Npz, FailedRenameKeepsTheTargetAndLeavesNoTemporary) {
  const ScratchDir dir;
  std::filesystem::create_directory(dir.path() / "t.npz");
  test::write_bytes(dir.file("t.npz/keep"), test::to_bytes("x"));
  EXPECT_THROW(sample_writer(true).write(dir.file("t.npz")), Error);
  EXPECT_EQ(dir.entries(), std::set<std::string>{"t.npz"});
  EXPECT_TRUE(std::filesystem::exists(dir.file("t.npz/keep")));
}

// ---- corrupt archives -----------------------------------------------------------------------------

// Every way of reading the archive must fail with a qk::Error that starts with its name.
void expect_all_reads_fail(const std::string& path, const std::string& message = "") {
  const auto matcher = AllOf(StartsWith(path), HasSubstr(message));
  EXPECT_THAT([&] { (void)read_npz(path); }, testing::ThrowsMessage<Error>(matcher));
  const std::vector<std::byte> bytes = test::read_bytes(path);
  EXPECT_THAT([&] { (void)read_npz_bytes(bytes, path); }, testing::ThrowsMessage<Error>(matcher));
}

TEST(NpzCorrupt, RandomBytes) {
  const ScratchDir dir;
  std::mt19937 rng(static_cast<std::uint32_t>(testing::UnitTest::GetInstance()->random_seed()));
  for (const std::size_t size : {1, 21, 22, 100, 5000}) {
    std::vector<std::byte> bytes(size);
    for (std::byte& b : bytes) b = static_cast<std::byte>(rng());
    test::write_bytes(dir.file("r.npz"), bytes);
    SCOPED_TRACE(size);
    expect_all_reads_fail(dir.file("r.npz"), "not a valid .npz archive");
    EXPECT_THROW(npz_names(dir.file("r.npz")), Error);
    EXPECT_THROW(read_npz_member(dir.file("r.npz"), "weights"), Error);
  }
}

TEST(NpzCorrupt, EmptyAndMissingFiles) {
  const ScratchDir dir;
  test::write_bytes(dir.file("empty.npz"), {});
  expect_all_reads_fail(dir.file("empty.npz"), "not an .npz archive");
  EXPECT_THAT(
      [&] { (void)read_npz(dir.file("nope.npz")); },
      testing::ThrowsMessage<Error>(AllOf(StartsWith(dir.file("nope.npz")), HasSubstr("cannot open"))));
  EXPECT_THAT([&] { (void)read_npz(dir.path().string()); },
              testing::ThrowsMessage<Error>(HasSubstr("not a regular file")));
}

TEST(NpzCorrupt, EveryTruncationIsAnError) {
  const ScratchDir dir;
  for (const bool compress : {false, true}) {
    NpzWriter writer(compress);
    writer.add<float>("w", {6}, kWeights);
    writer.add<std::int32_t>("z", {3}, kZeroPoints);
    writer.write(dir.file("whole.npz"));
    const std::vector<std::byte> whole = test::read_bytes(dir.file("whole.npz"));
    for (std::size_t n = 0; n + 1 < whole.size(); ++n) {
      SCOPED_TRACE(n);
      const std::vector<std::byte> cut(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n));
      test::write_bytes(dir.file("cut.npz"), cut);
      expect_all_reads_fail(dir.file("cut.npz"));
    }
  }
}

// Flipping a byte of member data never gives wrong data silently: the CRC, inflate or the .npy checks catch
// it.
TEST(NpzCorrupt, FlippedDataBytesAreErrorsNamingTheMember) {
  const ScratchDir dir;
  for (const bool compress : {false, true}) {
    NpzWriter writer(compress);
    writer.add<float>("w", {6}, kWeights);
    writer.write(dir.file("whole.npz"));
    const std::vector<std::byte> whole = test::read_bytes(dir.file("whole.npz"));
    // The member's data runs from after the 30-byte local header and the name "w.npy" (no extra field
    // for a small member) to the central directory, which starts with "PK\1\2".
    const std::size_t data_start = 30 + 5;
    const std::string text(reinterpret_cast<const char*>(whole.data()), whole.size());
    const std::size_t data_end = text.find("PK\x01\x02", data_start);
    ASSERT_NE(data_end, std::string::npos);
    ASSERT_GT(data_end, data_start + 20);
    for (std::size_t at = data_start; at < data_end; ++at) {
      std::vector<std::byte> bad = whole;
      bad[at] ^= std::byte{0x5a};
      test::write_bytes(dir.file("bad.npz"), bad);
      SCOPED_TRACE(at);
      try {
        // A flip can go unnoticed only where it changes nothing: in the unused bits that pad deflate's
        // last byte. The data read must then be exactly what was written.
        const auto arrays = read_npz(dir.file("bad.npz"));
        EXPECT_EQ(arrays.at("w").to_vector<float>(), kWeights)
            << "corruption at " << at << " was not detected";
      } catch (const Error& e) {
        EXPECT_THAT(e.what(), StartsWith(dir.file("bad.npz")));
      }
    }
  }
}

// ---- large members --------------------------------------------------------------------------------

}  // namespace
}  // namespace qk::io
