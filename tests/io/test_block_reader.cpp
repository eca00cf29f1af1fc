// BlockReader: direct reads equal buffered reads on both engines, the fallbacks are reported, misaligned
// direct requests and bad files are refused.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <new>
#include <random>
#include <vector>

#include "io_test_util.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/io/block_reader.hpp"

namespace qk::io {
namespace {

constexpr std::int64_t kBlock = kDirectAlignment;

struct AlignedBuffer {
  explicit AlignedBuffer(std::size_t n)
      : bytes(static_cast<std::uint8_t*>(::operator new[](n, std::align_val_t{kBlock}))), size(n) {}
  ~AlignedBuffer() { ::operator delete[](bytes, std::align_val_t{kBlock}); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  std::uint8_t* bytes;
  std::size_t size;
};

std::vector<std::uint8_t> write_random_file(const std::string& path, std::size_t size, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> bytes(size);
  for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(size));
  return bytes;
}

// Reads blocks [first, first + count) of each listed range with the given options and checks the bytes.
void check_reads(const std::string& path, const std::vector<std::uint8_t>& want,
                 const BlockReaderOptions& options, bool expect_direct) {
  BlockReader reader(path, options);
  EXPECT_EQ(reader.direct(), expect_direct) << reader.fallback_reason();
  EXPECT_EQ(reader.file_size(), static_cast<std::int64_t>(want.size()));
  // Three rounds through the same reader (the pool's threads and the ring are reused), each 40 requests,
  // more than the queue depth, scattered and out of order, one running past the end.
  for (std::uint32_t round = 0; round < 3; ++round) {
    std::mt19937 rng(5 + round);
    const std::int64_t blocks = static_cast<std::int64_t>(want.size()) / kBlock;
    std::vector<ReadRequest> requests;
    std::vector<std::int64_t> lengths;
    for (int i = 0; i < 40; ++i) {
      const std::int64_t first = static_cast<std::int64_t>(rng() % static_cast<std::uint32_t>(blocks));
      const std::int64_t count = 1 + static_cast<std::int64_t>(rng() % 3);
      requests.push_back({first * kBlock, count * kBlock, nullptr});
    }
    requests.push_back({(blocks - 1) * kBlock, 4 * kBlock, nullptr});  // past the end of the file
    std::int64_t total = 0;
    for (const ReadRequest& r : requests) total += r.length;
    AlignedBuffer buffer(static_cast<std::size_t>(total));
    std::fill(buffer.bytes, buffer.bytes + total, std::uint8_t{0xAB});
    std::int64_t at = 0;
    for (ReadRequest& r : requests) {
      r.dst = buffer.bytes + at;
      at += r.length;
    }
    reader.read(requests);
    for (const ReadRequest& r : requests) {
      const std::int64_t available =
          std::min<std::int64_t>(r.length, static_cast<std::int64_t>(want.size()) - r.offset);
      for (std::int64_t i = 0; i < available; ++i)
        ASSERT_EQ(r.dst[i], want[static_cast<std::size_t>(r.offset + i)]) << "offset " << r.offset + i;
      // What a direct read leaves past the end of the file is the file system's business (ext4 zeroes the
      // rest of the request); a buffered read leaves it alone.
      const std::int64_t untouched = expect_direct ? r.length : available;
      for (std::int64_t i = untouched; i < r.length; ++i)
        ASSERT_EQ(r.dst[i], 0xAB) << "past the end: offset " << r.offset << " + " << i << " of " << r.length;
    }
  }
}

TEST(BlockReader, DirectReadsEqualBufferedReadsOnEveryBackend) {
  test::ScratchDir dir;
  const std::string path = dir.file("blocks.bin");
  const auto want = write_random_file(path, 64 * kBlock + 1000, 17);  // a partial last block
  std::vector<ReadBackend> backends = {ReadBackend::kPread};
  if (io_uring_available()) backends.push_back(ReadBackend::kIoUring);
  for (const ReadBackend backend : backends) {
    SCOPED_TRACE(to_string(backend));
    BlockReaderOptions buffered{false, backend, 16};  // the pread pool: 4 threads
    check_reads(path, want, buffered, false);
    // ext4, xfs and btrfs do direct I/O; a temp folder on tmpfs does not (the fallback test covers it).
    BlockReaderOptions direct{true, backend, 8};
    BlockReader probe(path, direct);
    check_reads(path, want, direct, probe.direct());
    EXPECT_EQ(BlockReader(path, direct).backend(), backend);
  }
}

TEST(BlockReader, AutoPicksIoUringWhereItRunsAndSaysWhyNot) {
  test::ScratchDir dir;
  const std::string path = dir.file("f.bin");
  write_random_file(path, 2 * kBlock, 1);
  std::string why;
  const bool uring = io_uring_available(&why);
  BlockReader reader(path, {});
  EXPECT_EQ(reader.backend(), uring ? ReadBackend::kIoUring : ReadBackend::kPread);
  if (!uring) EXPECT_NE(reader.fallback_reason().find("io_uring"), std::string::npos) << why;
  EXPECT_EQ(parse_read_backend("pread"), ReadBackend::kPread);
  EXPECT_EQ(parse_read_backend("io_uring"), ReadBackend::kIoUring);
  EXPECT_THROW(parse_read_backend("aio"), Error);
}

TEST(BlockReader, FallsBackToBufferedReadsWhereODirectIsRefusedAndSaysSo) {
  // procfs refuses O_DIRECT on every kernel; tmpfs (/dev/shm) did before Linux 6.6.
  if (std::filesystem::exists("/proc/version")) {
    const BlockReader proc("/proc/version", {true, ReadBackend::kPread, 4});
    EXPECT_FALSE(proc.direct());
    EXPECT_NE(proc.fallback_reason().find("O_DIRECT"), std::string::npos) << proc.fallback_reason();
  }
  const std::filesystem::path shm = "/dev/shm";
  if (!std::filesystem::is_directory(shm)) GTEST_SKIP() << "no /dev/shm here";
  const std::string path = (shm / ("qk-block-reader-" + std::to_string(::getpid()))).string();
  const auto want = write_random_file(path, 8 * kBlock, 3);
  const bool direct = BlockReader(path, {true, ReadBackend::kPread, 4}).direct();
  check_reads(path, want, {true, ReadBackend::kPread, 4}, direct);  // the same bytes either way
  std::filesystem::remove(path);
}

TEST(BlockReader, AFileThatShrinksWhileOpenIsAnErrorNotOldBytes) {
  test::ScratchDir dir;
  const std::string path = dir.file("f.bin");
  write_random_file(path, 8 * kBlock, 4);
  std::vector<ReadBackend> backends = {ReadBackend::kPread};
  if (io_uring_available()) backends.push_back(ReadBackend::kIoUring);
  for (const ReadBackend backend : backends) {
    SCOPED_TRACE(to_string(backend));
    write_random_file(path, 8 * kBlock, 4);
    BlockReader reader(path, {true, backend, 8});
    std::filesystem::resize_file(path, 2 * kBlock);
    AlignedBuffer buffer(2 * kBlock);
    const ReadRequest late{4 * kBlock, 2 * kBlock, buffer.bytes};
    try {
      reader.read(std::span(&late, 1));
      ADD_FAILURE() << "read past the new end without an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
  }
}

TEST(BlockReader, RefusesMisalignedDirectReadsDirectoriesAndMissingFiles) {
  test::ScratchDir dir;
  const std::string path = dir.file("f.bin");
  write_random_file(path, 4 * kBlock, 2);
  BlockReader reader(path, {true, ReadBackend::kPread, 4});
  if (reader.direct()) {
    AlignedBuffer buffer(2 * kBlock);
    for (const ReadRequest misaligned :
         {ReadRequest{100, kBlock, buffer.bytes}, ReadRequest{0, 100, buffer.bytes},
          ReadRequest{0, kBlock, buffer.bytes + 1}})
      EXPECT_THROW(reader.read(std::span(&misaligned, 1)), Error);
  }
  EXPECT_THROW(BlockReader(dir.path().string(), {}), Error);
  EXPECT_THROW(BlockReader(dir.file("missing.bin"), {}), Error);
}

}  // namespace
}  // namespace qk::io
