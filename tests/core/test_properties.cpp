// Properties of quantize / dequantize / fake-quantize that must hold for every spec, float type and
// granularity: bounded round-trip error, idempotent fake-quant, monotone codes, exact bit packing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "quantkit/quantkit.hpp"

namespace qk {
namespace {

std::uint32_t test_seed() {
  return static_cast<std::uint32_t>(::testing::UnitTest::GetInstance()->random_seed());
}

struct SpecCase {
  int bits;
  bool is_signed;
  Scheme scheme;
  Granularity granularity;
};

std::vector<SpecCase> all_specs() {
  std::vector<SpecCase> out;
  for (int bits = 2; bits <= 8; ++bits)
    for (bool s : {true, false})
      for (Scheme sc : {Scheme::kAffine, Scheme::kSymmetric})
        for (Granularity g : {Granularity::kPerTensor, Granularity::kPerChannel, Granularity::kPerGroup})
          out.push_back({bits, s, sc, g});
  return out;
}

QuantSpec make_spec(const SpecCase& c) {
  QuantSpec spec;
  spec.bits = c.bits;
  spec.is_signed = c.is_signed;
  spec.scheme = c.scheme;
  spec.granularity = c.granularity;
  spec.axis = 1;
  spec.group_size = 8;
  return spec;
}

template <class T>
void check_round_trip(const SpecCase& sc, std::mt19937& rng) {
  const Shape shape{3, 5, 16};
  const std::int64_t n = shape_numel(shape);
  std::normal_distribution<float> dist(0.3f, 2.0f);
  std::vector<T> x(static_cast<std::size_t>(n));
  for (auto& v : x) v = T(dist(rng));
  const QuantSpec spec = make_spec(sc);
  const TensorView<const T> view(x.data(), shape);
  const QuantParams params = choose_qparams<T>(view, spec);
  std::vector<std::int32_t> q(x.size());
  quantize<T, std::int32_t>(view, params, q);
  std::vector<T> back(x.size());
  dequantize<std::int32_t, T>(TensorView<const std::int32_t>(q.data(), shape), params, back);
  std::vector<T> fq(x.size()), fq2(x.size());
  fake_quantize<T>(view, params, fq);
  fake_quantize<T>(TensorView<const T>(fq.data(), shape), params, fq2);
  const ChannelLayout layout = channel_layout(shape, spec);
  const QRange r = spec.range();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    const auto slot = static_cast<std::size_t>(layout.slot_of(i));
    const double scale = params.scale[slot];
    const double zp = params.zero_point[slot];
    const double v = static_cast<double>(to_compute(x[k]));
    const double lo = (static_cast<double>(r.min) - zp) * scale;
    const double hi = (static_cast<double>(r.max) - zp) * scale;
    ASSERT_GE(q[k], r.min);
    ASSERT_LE(q[k], r.max);
    // Fake-quant is quantize then dequantize, and applying it twice changes nothing.
    ASSERT_EQ(static_cast<double>(to_compute(fq[k])), static_cast<double>(to_compute(back[k])))
        << "element " << i;
    ASSERT_EQ(static_cast<double>(to_compute(fq2[k])), static_cast<double>(to_compute(fq[k])))
        << "element " << i;
    if (v >= lo && v <= hi) {
      // Half a step, plus the float rounding of x*inv and of the dequantize multiply (a few ulps of
      // the compute type relative to |x|), plus the output rounding of the storage type.
      const double ulp = std::is_same_v<T, double> ? 1e-15 : std::is_same_v<T, float> ? 1e-6 : 1e-3;
      ASSERT_LE(std::abs(static_cast<double>(to_compute(back[k])) - v),
                scale / 2 + 4 * ulp * std::max(1.0, std::abs(v)))
          << "element " << i << " bits " << sc.bits;
    }
  }
}

TEST(Properties, RoundTripIdempotentAndBoundedForEverySpec) {
  std::mt19937 rng(test_seed());
  SCOPED_TRACE("seed " + std::to_string(test_seed()));
  for (const SpecCase& sc : all_specs()) {
    SCOPED_TRACE("bits " + std::to_string(sc.bits) + (sc.is_signed ? " signed " : " unsigned ") +
                 to_string(sc.scheme) + " " + to_string(sc.granularity));
    check_round_trip<float>(sc, rng);
    check_round_trip<double>(sc, rng);
    check_round_trip<half>(sc, rng);
  }
}

TEST(Properties, CodesAreMonotoneInTheInput) {
  std::mt19937 rng(test_seed());
  SCOPED_TRACE("seed " + std::to_string(test_seed()));
  std::uniform_real_distribution<float> dist(-10.0f, 10.0f);
  std::vector<float> x(4096);
  for (auto& v : x) v = dist(rng);
  std::sort(x.begin(), x.end());
  for (int bits : {2, 3, 4, 8}) {
    for (Scheme scheme : {Scheme::kAffine, Scheme::kSymmetric}) {
      QuantSpec spec;
      spec.bits = bits;
      spec.scheme = scheme;
      const TensorView<const float> view(x.data(), {4096});
      QuantParams params = choose_qparams<float>(view, spec);
      params.scale[0] *= 0.5f;  // a tighter scale so that both ends clamp too
      std::vector<std::int32_t> q(x.size());
      quantize<float, std::int32_t>(view, params, q);
      EXPECT_TRUE(std::is_sorted(q.begin(), q.end())) << "bits " << bits;
      EXPECT_EQ(q.front(), spec.range().min);
      EXPECT_EQ(q.back(), spec.range().max);
    }
  }
}

TEST(Properties, PackUnpackRoundTripsEveryWidth) {
  std::mt19937 rng(test_seed());
  SCOPED_TRACE("seed " + std::to_string(test_seed()));
  for (int bits = 1; bits <= 8; ++bits) {
    for (bool is_signed : {true, false}) {
      for (std::int64_t n : {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 1000}) {
        const std::int32_t lo = is_signed ? -(1 << (bits - 1)) : 0;
        const std::int32_t hi = is_signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
        std::uniform_int_distribution<std::int32_t> dist(lo, hi);
        std::vector<std::int32_t> codes(static_cast<std::size_t>(n));
        for (auto& c : codes) c = dist(rng);
        if (n > 1) {
          codes[0] = lo;
          codes[1] = hi;
        }
        std::vector<std::uint8_t> packed(static_cast<std::size_t>(packed_bytes(n, bits)));
        pack_bits<std::int32_t>(codes, bits, packed);
        std::vector<std::int32_t> back(codes.size());
        unpack_bits<std::int32_t>(packed, bits, is_signed, back);
        ASSERT_EQ(back, codes) << "bits " << bits << " n " << n;
      }
    }
  }
}

TEST(Properties, PackLayoutIsLowBitsFirst) {
  // 4-bit: element 0 in the low nibble (ONNX int4); 3-bit: a little-endian bit stream.
  const std::vector<std::int32_t> nibbles{1, 2, -1, 7};
  std::vector<std::uint8_t> packed(2);
  pack_bits<std::int32_t>(nibbles, 4, packed);
  EXPECT_EQ(packed[0], 0x21);
  EXPECT_EQ(packed[1], 0x7f);
  const std::vector<std::int32_t> threes{1, 2, 3, 4, 5, 6, 7, 0};
  std::vector<std::uint8_t> p3(3);
  pack_bits<std::int32_t>(threes, 3, p3);
  // bits: 001 010 011 100 101 110 111 000 laid LSB-first
  std::uint32_t stream = 0;
  for (int i = 0; i < 8; ++i)
    stream |= static_cast<std::uint32_t>(threes[static_cast<std::size_t>(i)]) << (3 * i);
  EXPECT_EQ(p3[0], stream & 0xff);
  EXPECT_EQ(p3[1], (stream >> 8) & 0xff);
  EXPECT_EQ(p3[2], (stream >> 16) & 0xff);
}

TEST(Properties, QuantizeRejectsNonFiniteWithCountAndIndex) {
  std::vector<float> x{0.0f, 1.0f, NAN, 2.0f, INFINITY};
  const TensorView<const float> view(x.data(), {5});
  QuantSpec spec;
  try {
    (void)choose_qparams<float>(view, spec);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 non-finite"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qk

namespace qk {
namespace {

// The float scan counts in blocks of 1024: NaN/Inf at block edges and in the tail are all found.
TEST(Properties, NonFiniteScanFindsValuesAtBlockEdges) {
  std::vector<float> x(3001, 1.0f);
  x[1023] = NAN;
  x[1024] = INFINITY;
  x[2047] = -INFINITY;
  x[3000] = NAN;  // in the tail after the last whole block
  NonFiniteReport report;
  scan_nonfinite<float>(x, 10, report);
  EXPECT_EQ(report.count, 4);
  EXPECT_EQ(report.first_index, 10 + 1023);
  NonFiniteReport tail_only;
  scan_nonfinite<float>(std::span<const float>(x).subspan(2048), 0, tail_only);
  EXPECT_EQ(tail_only.count, 1);
  EXPECT_EQ(tail_only.first_index, 952);
}

}  // namespace
}  // namespace qk
