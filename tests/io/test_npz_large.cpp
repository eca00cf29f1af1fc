// .npz members beyond 4 GiB (zip64), written and read back: an executable of its own, labelled "large"
// (tests/io/CMakeLists.txt), so that the release run covers it and the slower runs can leave it out.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "io_test_util.hpp"
#include "quantkit/io/npz.hpp"

namespace qk::io {
namespace {

using test::ScratchDir;

void expect_large_member_round_trip(std::int64_t n, bool compress) {
  const ScratchDir dir;
  {
    std::vector<std::byte> npy = encode_npy_header(DType::kUint8, {n});
    const std::size_t at = npy.size();
    npy.resize(at + static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; i += 4093)
      npy[at + static_cast<std::size_t>(i)] = static_cast<std::byte>(i % 251);
    npy.back() = std::byte{42};
    NpzWriter writer(compress);
    writer.add_encoded("big", std::move(npy));
    writer.add<float>("after", {2}, std::vector<float>{1.0f, 2.0f});
    writer.write(dir.file("big.npz"));
  }
  EXPECT_EQ(npz_names(dir.file("big.npz")), (std::vector<std::string>{"big", "after"}));
  EXPECT_EQ(read_npz_member(dir.file("big.npz"), "after").to_vector<float>(),
            (std::vector<float>{1.0f, 2.0f}));
  const NpyArray big = read_npz_member(dir.file("big.npz"), "big");
  ASSERT_EQ(big.numel(), n);
  const std::span<const std::uint8_t> flat = big.view<std::uint8_t>().flat();
  for (std::int64_t i = 0; i < n; i += 4093) ASSERT_EQ(flat[static_cast<std::size_t>(i)], i % 251) << i;
  EXPECT_EQ(flat.back(), 42);
}

// A member past 4 GiB needs zip64. Each archive (stored, then deflated) costs ~4.3 GB of memory and
// disk and about a minute; the executable carries the CTest label "large", which the release run of
// scripts/test-all.sh runs once and the scalar and sanitizer runs leave out (-LE).
TEST(NpzLarge, MemberBeyondFourGiB) {
  const std::int64_t n = (std::int64_t{1} << 32) + 4096 + 7;
  for (const bool compress : {false, true}) {
    SCOPED_TRACE(compress ? "deflated" : "stored");
    expect_large_member_round_trip(n, compress);
  }
}

}  // namespace
}  // namespace qk::io
