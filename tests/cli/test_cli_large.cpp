// qtool on a 1 GiB float32 .npy: the file is streamed through a memory map, so the process must stay
// far below the input's size. Its own executable so that sanitizer runs can leave it out (name: Large).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "cli_test_util.hpp"

namespace qk::cli_test {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kRows = 16384;
constexpr std::int64_t kCols = 16384;  // 2^28 float32 values: 1 GiB of data

class CliLarge : public testing::Test {
 protected:
  void SetUp() override { folder_.emplace("qk-cli-large"); }
  // Removes the 1.3 GB of files whatever happened in the test.
  void TearDown() override { folder_.reset(); }

  fs::path path(const std::string& name) const { return folder_->path() / name; }

  // Writes the .npy a block of rows at a time (4 MiB): the test never holds the array in memory.
  void write_big_npy(const fs::path& file) const {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << npy_bytes(npy_dict("<f4", "(16384, 16384)"), "");
    constexpr std::int64_t kBlockRows = 64;
    std::vector<float> block(static_cast<std::size_t>(kBlockRows * kCols));
    std::uint32_t state = 2463534242u;
    for (std::int64_t row0 = 0; row0 < kRows; row0 += kBlockRows) {
      for (std::int64_t r = 0; r < kBlockRows; ++r) {
        // Uniform in [-1, 1) times a per-row magnitude, so the per-channel scales differ.
        const float magnitude = 0.5f + static_cast<float>((row0 + r) % 13);
        for (std::int64_t c = 0; c < kCols; ++c) {
          state ^= state << 13;
          state ^= state >> 17;
          state ^= state << 5;
          block[static_cast<std::size_t>(r * kCols + c)] =
              magnitude * (static_cast<float>(state >> 8) * 0x1p-23f - 1.0f);
        }
      }
      out.write(reinterpret_cast<const char*>(block.data()),
                static_cast<std::streamsize>(block.size() * sizeof(float)));
    }
    out.close();
    ASSERT_TRUE(out.good()) << "writing " << file;
  }

  std::optional<TempFolder> folder_;
};

TEST_F(CliLarge, QuantizeOneGiBInBoundedMemory) {
  const fs::path input = path("big.npy");
  ASSERT_NO_FATAL_FAILURE(write_big_npy(input));
  const std::uintmax_t input_bytes = fs::file_size(input);
  ASSERT_EQ(input_bytes, 128u + (std::uintmax_t{1} << 30));

  const auto start = std::chrono::steady_clock::now();
  const ProcessResult r =
      run_qtool({"quantize", "big.npy", "-o", "big.npz", "--json"}, folder_->path().string());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const auto peak = j.at("peak_rss_bytes").get<std::uint64_t>();
  std::printf("qtool quantize of 1 GiB: peak RSS %.1f MiB, %.2f s (qtool's own timing %.2f s)\n",
              static_cast<double>(peak) / (1 << 20), seconds, j.at("seconds").get<double>());
  RecordProperty("peak_rss_bytes", std::to_string(peak));

  // The bound is 1.6 GiB. The 256 MiB of int8 codes are built in memory before the archive is
  // written; the input is mapped and its pages dropped chunk by chunk, so the peak measured here is about
  // 280 MiB. 0.75 GiB keeps headroom for libzip and the allocator while still failing a regression that
  // keeps the mapped input resident (about 1.25 GiB) or copies it whole (about 1.3 GiB).
  EXPECT_LT(static_cast<double>(peak), 0.75 * static_cast<double>(std::uint64_t{1} << 30));
  EXPECT_EQ(j.at("input_bytes"), std::uint64_t{1} << 30);
  EXPECT_EQ(j.at("scales"), kRows);
  EXPECT_EQ(j.at("nonfinite"), 0);

  ASSERT_TRUE(fs::exists(path("big.npz")));
  const std::uintmax_t output_bytes = fs::file_size(path("big.npz"));
  EXPECT_EQ(j.at("output_bytes"), output_bytes);
  // One byte per float32 value plus 128 KiB of scales and zero points and a few headers.
  const double ratio = static_cast<double>(output_bytes) / static_cast<double>(input_bytes);
  EXPECT_GT(ratio, 0.25);
  EXPECT_LT(ratio, 0.251);
  EXPECT_TRUE(temp_files(folder_->path()).empty());
}

}  // namespace
}  // namespace qk::cli_test
