// qtool dequantize: every output dtype holds the quantized values.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_fixture.hpp"
#include "quantkit/core/half.hpp"

namespace qk::cli_test {
namespace {

using CliRoundTrip = Cli;

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

}  // namespace
}  // namespace qk::cli_test
