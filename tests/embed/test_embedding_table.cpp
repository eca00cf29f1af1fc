// EmbeddingTable: row layouts and sizes, files, and bad input (the row-wise dequantize kernels are tested
// in tests/kernels/test_kernels.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "../io/io_test_util.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/embed/embedding_table.hpp"
#include "quantkit/embed/id_stream.hpp"
#include "quantkit/embed/rowwise.hpp"
#include "quantkit/embed/sparse_lookup.hpp"
#include "quantkit/files/embedding_file.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"

namespace qk {
namespace {

std::mt19937 seeded_rng() {
  const auto seed = static_cast<std::uint32_t>(::testing::UnitTest::GetInstance()->random_seed());
  std::printf("random seed %u\n", seed);
  return std::mt19937(seed);
}

std::vector<float> random_values(std::int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

constexpr EmbeddingStorage kAllStorages[] = {EmbeddingStorage::kF32, EmbeddingStorage::kF16,
                                             EmbeddingStorage::kInt8, EmbeddingStorage::kInt4};

TEST(EmbeddingTable, BytesPerRowMeetTheMemoryTargets) {
  for (const std::int64_t dim : {64, 128, 256, 768}) {
    const double fp32 = static_cast<double>(dim) * 4;
    EXPECT_EQ(embedding_row_bytes(EmbeddingStorage::kF32, dim), dim * 4);
    EXPECT_EQ(embedding_row_bytes(EmbeddingStorage::kF16, dim), dim * 2);
    EXPECT_EQ(embedding_row_bytes(EmbeddingStorage::kInt8, dim), dim + 4);
    EXPECT_EQ(embedding_row_bytes(EmbeddingStorage::kInt4, dim), dim / 2 + 4);
    EXPECT_LE(embedding_row_bytes(EmbeddingStorage::kInt8, dim) / fp32, 0.27) << dim;  // issue target
    EXPECT_LE(embedding_row_bytes(EmbeddingStorage::kInt4, dim) / fp32, 0.15) << dim;
  }
  EXPECT_EQ(embedding_row_bytes(EmbeddingStorage::kInt4, 7), 4 + 4);
}

// Golden rule 8's fp16-scale/bias row (the 4- and 2-bit prepack, which the table's int8 rows use with
// L = 255: FBGEMM's FusedNBitRowwiseQuantizedSBHalf), written again from the golden README, independent of
// the library's prepack: codes, then the fp16 scale and bias.
std::vector<std::uint8_t> golden_half_sb_row(const float* x, std::int64_t dim, int bits) {
  float mn = x[0], mx = x[0];
  for (std::int64_t d = 1; d < dim; ++d) mn = std::min(mn, x[d]), mx = std::max(mx, x[d]);
  const auto L = static_cast<float>((1 << bits) - 1);
  const half bias(mn);  // round to nearest even
  const float range = mx - static_cast<float>(bias);
  half scale(range / L);
  if (range == 0.0f || static_cast<float>(scale) == 0.0f) scale = half(1.0f);
  const float inv = 1.0f / static_cast<float>(scale);
  const std::int64_t code_bytes = (dim * bits + 7) / 8;
  std::vector<std::uint8_t> row(static_cast<std::size_t>(code_bytes + 4), 0);
  for (std::int64_t d = 0; d < dim; ++d) {
    float code = std::rint((x[d] - static_cast<float>(bias)) * inv);
    code = code < 0.0f ? 0.0f : (code > L ? L : code);
    const int per_byte = 8 / bits;
    row[static_cast<std::size_t>(d / per_byte)] |=
        static_cast<std::uint8_t>(static_cast<unsigned>(code) << ((d % per_byte) * bits));
  }
  row[static_cast<std::size_t>(code_bytes)] = static_cast<std::uint8_t>(scale.bits & 0xFF);
  row[static_cast<std::size_t>(code_bytes) + 1] = static_cast<std::uint8_t>(scale.bits >> 8);
  row[static_cast<std::size_t>(code_bytes) + 2] = static_cast<std::uint8_t>(bias.bits & 0xFF);
  row[static_cast<std::size_t>(code_bytes) + 3] = static_cast<std::uint8_t>(bias.bits >> 8);
  return row;
}

TEST(EmbeddingTable, RowsAreTheGoldenRowsAndWithinHalfAStep) {
  auto rng = seeded_rng();
  for (const std::int64_t dim : {1, 5, 16, 33, 64, 257}) {
    const std::int64_t rows = 37;
    auto values = random_values(rows * dim, rng);
    for (std::int64_t d = 0; d < dim; ++d)
      values[static_cast<std::size_t>(3 * dim + d)] = 0.4f;  // constant row
    for (const EmbeddingStorage storage : kAllStorages) {
      SCOPED_TRACE(std::string(to_string(storage)) + " dim " + std::to_string(dim));
      const auto table =
          EmbeddingTable::from_floats(TensorView<const float>(values.data(), {rows, dim}), storage);
      EXPECT_EQ(table.bytes(), rows * embedding_row_bytes(storage, dim));
      const int bits = storage_bits(storage);
      std::vector<float> fast(static_cast<std::size_t>(dim)), ref(fast);
      for (std::int64_t r = 0; r < rows; ++r) {
        table.dequantize_row(r, fast.data());
        table.dequantize_row_ref(r, ref.data());
        ASSERT_EQ(fast, ref) << "row " << r;
        const float* x = values.data() + r * dim;
        if (bits == 32) {
          for (std::int64_t d = 0; d < dim; ++d) ASSERT_EQ(fast[d], x[d]) << "row " << r << " d " << d;
          continue;
        }
        if (bits == 16) {  // round to nearest even: exactly qk::half's value
          for (std::int64_t d = 0; d < dim; ++d)
            ASSERT_EQ(fast[d], static_cast<float>(half(x[d]))) << "row " << r << " d " << d;
          continue;
        }
        // Quantized rows: byte for byte the golden row.
        const std::vector<std::uint8_t> golden = golden_half_sb_row(x, dim, bits);
        ASSERT_EQ(0, std::memcmp(golden.data(), table.row_data(r), golden.size())) << "row " << r;
        // And every value within half a step, plus what the float16 parameters cost. With
        // e = 2^-11 (float16's relative rounding) and R = |mn| + (mx - mn):
        // - bias = fp16(mn) may sit above mn by |mn| e: values below it clamp to code 0, off by <= |mn| e;
        // - scale = fp16(range / L) may be below range / L by (range / L) e, so L * scale may fall short
        //   of the top value by <= range e, which the clamp to L leaves as error;
        // - elsewhere the code is the nearest: off by <= scale / 2, plus the float32 rounding of
        //   (x - bias) * inv and of code * scale + bias: a few 2^-24 R;
        // - a float16 subnormal scale is absolute-rounded (2^-25), which L codes multiply.
        // So |x - dequantized| <= scale / 2 + R e + 4 * 2^-24 R + L 2^-25. Truncating instead of
        // rounding costs up to a whole step (about 2.5 times this bound at 8 bits for N(0, 1) rows).
        float mn = x[0], mx = x[0];
        for (std::int64_t d = 0; d < dim; ++d) mn = std::min(mn, x[d]), mx = std::max(mx, x[d]);
        const double L = (1 << bits) - 1;
        const double R = std::abs(mn) + (mx - mn);
        const std::size_t code_bytes = golden.size() - 4;
        const double scale =
            half_bits_to_float(static_cast<std::uint16_t>(golden[code_bytes] | golden[code_bytes + 1] << 8));
        const double bound = scale / 2 + R * 0x1p-11 + 4 * 0x1p-24 * R + L * 0x1p-25;
        for (std::int64_t d = 0; d < dim; ++d)
          ASSERT_LE(std::abs(double(fast[d]) - x[d]), bound) << "row " << r << " d " << d;
      }
    }
  }
}

TEST(EmbeddingTable, Int4RowsAreTheGoldenFusedRows) {
  // The table's 4-bit rows are golden rule 8's rows (prepack_row), byte for byte.
  auto rng = seeded_rng();
  const std::int64_t rows = 9, dim = 21;
  const auto values = random_values(rows * dim, rng);
  const auto table = EmbeddingTable::from_floats(TensorView<const float>(values.data(), {rows, dim}),
                                                 EmbeddingStorage::kInt4);
  std::vector<std::uint8_t> golden(static_cast<std::size_t>(rowwise_row_bytes(dim, 4)));
  for (std::int64_t r = 0; r < rows; ++r) {
    prepack_row(std::span<const float>(values.data() + r * dim, static_cast<std::size_t>(dim)), 4, golden);
    EXPECT_EQ(0, std::memcmp(golden.data(), table.row_data(r), golden.size())) << "row " << r;
  }
}

TEST(EmbeddingTable, ConstantRowsAreExact) {
  const std::vector<float> values(3 * 40, 0.75f);
  for (const EmbeddingStorage storage : kAllStorages) {
    const auto table = EmbeddingTable::from_floats(TensorView<const float>(values.data(), {3, 40}), storage);
    std::vector<float> row(40);
    table.dequantize_row(1, row.data());
    for (float v : row) EXPECT_EQ(v, 0.75f) << to_string(storage);
  }
}

TEST(EmbeddingTable, SaveAndOpenRoundTripEveryStorage) {
  auto rng = seeded_rng();
  io::test::ScratchDir dir;
  const std::int64_t rows = 50, dim = 19;
  const auto values = random_values(rows * dim, rng);
  for (const EmbeddingStorage storage : kAllStorages) {
    const auto table =
        EmbeddingTable::from_floats(TensorView<const float>(values.data(), {rows, dim}), storage);
    const std::string path = dir.file(std::string("t_") + to_string(storage) + ".npz");
    save_embedding_table(table, path);
    const auto loaded = open_embedding_table(path);
    EXPECT_EQ(loaded.storage(), storage);
    ASSERT_EQ(loaded.rows(), rows);
    ASSERT_EQ(loaded.dim(), dim);
    EXPECT_EQ(0, std::memcmp(loaded.row_data(0), table.row_data(0), static_cast<std::size_t>(table.bytes())));
  }
}

TEST(EmbeddingTable, LargeFloat32NpyIsViewedThroughTheMapAndQuantizedByStreaming) {
  auto rng = seeded_rng();
  io::test::ScratchDir dir;
  const std::int64_t rows = 3000, dim = 128;  // 1.5 MiB: above the 1 MiB mapping threshold
  const auto values = random_values(rows * dim, rng);
  const std::string path = dir.file("table.npy");
  io::write_npy(path, TensorView<const float>(values.data(), {rows, dim}));
  const auto mapped = embedding_table_from_npy(path, EmbeddingStorage::kF32);
  EXPECT_TRUE(mapped.memory_mapped());
  EXPECT_EQ(0, std::memcmp(mapped.row_data(0), values.data(), values.size() * 4));
  const auto streamed = embedding_table_from_npy(path, EmbeddingStorage::kInt8);
  const auto in_memory = EmbeddingTable::from_floats(TensorView<const float>(values.data(), {rows, dim}),
                                                     EmbeddingStorage::kInt8);
  EXPECT_FALSE(streamed.memory_mapped());
  EXPECT_EQ(0, std::memcmp(streamed.row_data(0), in_memory.row_data(0),
                           static_cast<std::size_t>(in_memory.bytes())));
  // float64 tables are converted.
  std::vector<double> doubles(values.begin(), values.begin() + 10 * dim);
  const std::string path64 = dir.file("table64.npy");
  io::write_npy(path64, TensorView<const double>(doubles.data(), {10, dim}));
  EXPECT_EQ(embedding_table_from_npy(path64, EmbeddingStorage::kF32).rows(), 10);
}

TEST(EmbeddingTable, BadTablesAndIdsAreRefusedWithClearErrors) {
  io::test::ScratchDir dir;
  const auto expect_error = [](const auto& fn, const std::string& fragment) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  const std::vector<float> none;
  expect_error(
      [&] {
        EmbeddingTable::from_floats(TensorView<const float>(none.data(), {0, 8}), EmbeddingStorage::kInt8);
      },
      "empty");
  const std::string empty = dir.file("empty.npy");
  io::write_npy(empty, TensorView<const float>(none.data(), {0, 8}));
  expect_error([&] { embedding_table_from_npy(empty, EmbeddingStorage::kInt8); }, "empty");
  const std::vector<float> flat(8, 1.0f);
  const std::string one_d = dir.file("flat.npy");
  io::write_npy(one_d, TensorView<const float>(flat.data(), {8}));
  expect_error([&] { embedding_table_from_npy(one_d, EmbeddingStorage::kInt8); }, "2-D");
  const std::vector<std::int32_t> ints(8, 1);
  const std::string int_table = dir.file("ints.npy");
  io::write_npy(int_table, TensorView<const std::int32_t>(ints.data(), {2, 4}));
  expect_error([&] { embedding_table_from_npy(int_table, EmbeddingStorage::kInt8); }, "floating-point");
  const std::string no_meta = dir.file("plain.npz");
  io::NpzWriter writer;
  writer.add<float>("x", {2, 4}, flat);
  writer.write(no_meta);
  expect_error([&] { open_embedding_table(no_meta); }, "not an embedding table");
  expect_error([] { parse_embedding_storage("int3"); }, "unknown embedding storage");

  const auto table =
      EmbeddingTable::from_floats(TensorView<const float>(flat.data(), {2, 4}), EmbeddingStorage::kInt8);
  const std::vector<std::int64_t> negative = {0, -1};
  const std::vector<std::int64_t> too_big = {1, 2};
  std::vector<float> out(8);
  expect_error([&] { embedding_lookup(table, negative, out); }, "negative");
  expect_error([&] { embedding_lookup(table, too_big, out); }, "out of range");
  const std::vector<std::int64_t> ids = {0, 1, 1};
  const std::vector<std::int64_t> not_monotone = {0, 2, 1};
  std::vector<float> bags(12);
  expect_error([&] { embedding_bag(table, ids, not_monotone, {}, bags); }, "not monotone");
  const std::vector<std::int64_t> late_start = {1, 2};
  expect_error([&] { embedding_bag(table, ids, late_start, {}, std::span<float>(bags).first(8)); },
               "offsets[0]");
  const std::vector<std::int64_t> past_end = {0, 4};
  expect_error([&] { embedding_bag(table, ids, past_end, {}, std::span<float>(bags).first(8)); }, "exceeds");

  const std::string float_ids = dir.file("float_ids.npy");
  io::write_npy(float_ids, TensorView<const float>(flat.data(), {8}));
  expect_error([&] { read_ids(float_ids); }, "must be integers");
  const std::vector<std::int64_t> no_ids;
  const std::string empty_ids = dir.file("empty_ids.npy");
  io::write_npy(empty_ids, TensorView<const std::int64_t>(no_ids.data(), {0}));
  expect_error([&] { read_ids(empty_ids); }, "empty");
}

TEST(SparseLookup, BagsMatchAStraightforwardImplementation) {
  auto rng = seeded_rng();
  const std::int64_t rows = 30, dim = 9;
  const auto values = random_values(rows * dim, rng);
  const auto table = EmbeddingTable::from_floats(TensorView<const float>(values.data(), {rows, dim}),
                                                 EmbeddingStorage::kInt8);
  std::uniform_int_distribution<std::int64_t> pick(0, rows - 1);
  std::vector<std::int64_t> ids(40);
  for (auto& id : ids) id = pick(rng);
  const std::vector<std::int64_t> offsets = {0, 3, 3, 10, 25, 39};  // includes an empty bag
  std::vector<float> weights(ids.size());
  for (auto& w : weights) w = std::uniform_real_distribution<float>(-2, 2)(rng);
  for (const BagMode mode : {BagMode::kSum, BagMode::kMean, BagMode::kMax}) {
    for (const bool weighted : {false, true}) {
      if (weighted && mode != BagMode::kSum) continue;
      BagOptions o;
      o.mode = mode;
      if (weighted) o.per_sample_weights = weights;
      std::vector<float> got(offsets.size() * dim);
      embedding_bag(table, ids, offsets, o, got);
      std::vector<float> row(static_cast<std::size_t>(dim));
      for (std::size_t b = 0; b < offsets.size(); ++b) {
        const std::int64_t begin = offsets[b], end = b + 1 < offsets.size() ? offsets[b + 1] : 40;
        std::vector<float> want(static_cast<std::size_t>(dim), 0.0f);
        for (std::int64_t j = begin; j < end; ++j) {
          table.dequantize_row_ref(ids[static_cast<std::size_t>(j)], row.data());
          for (std::int64_t d = 0; d < dim; ++d) {
            if (mode == BagMode::kMax) {
              want[d] = j == begin ? row[d] : std::max(want[d], row[d]);
            } else {
              want[d] += (weighted ? weights[static_cast<std::size_t>(j)] : 1.0f) * row[d];
            }
          }
        }
        if (mode == BagMode::kMean && end > begin)
          for (auto& w : want) w /= static_cast<float>(end - begin);
        for (std::int64_t d = 0; d < dim; ++d)
          ASSERT_EQ(got[b * dim + d], want[d]) << "bag " << b << " d " << d;
      }
    }
  }
  // include_last_offset: the last offset closes the last bag.
  const std::vector<std::int64_t> closed = {0, 3, 10};
  BagOptions o;
  o.include_last_offset = true;
  std::vector<float> two(2 * dim), three(3 * dim);
  embedding_bag(table, ids, closed, o, two);
  embedding_bag(table, std::span(ids).first(10), std::span(closed).first(2), {},
                std::span(three).first(2 * dim));
  EXPECT_EQ(two, std::vector<float>(three.begin(), three.begin() + 2 * dim));
}

TEST(SparseLookup, DenseOneHotBaselineGivesTheSameRows) {
  auto rng = seeded_rng();
  const std::int64_t rows = 200, dim = 16;
  const auto values = random_values(rows * dim, rng);
  const auto table = EmbeddingTable::from_floats(TensorView<const float>(values.data(), {rows, dim}),
                                                 EmbeddingStorage::kF32);
  std::vector<std::int64_t> ids(130);
  for (auto& id : ids) id = std::uniform_int_distribution<std::int64_t>(0, rows - 1)(rng);
  std::vector<float> sparse(ids.size() * dim), dense(sparse.size());
  embedding_lookup(table, ids, sparse);
  dense_onehot_lookup(values, rows, dim, ids, dense);
  EXPECT_EQ(sparse, dense);  // 1 * x + 0 * y + ... is exact
  EXPECT_THROW(dense_onehot_lookup(values, rows, dim, ids, dense, 100), Error);
}

// A plain lookup dequantizes every id straight into its output slot (no de-duplication; for int8 one
// gather kernel call per batch): each output row must equal the scalar reference's row, and the
// de-duplicated bag path's, bit for bit, for every storage, at dims off the SIMD steps and with repeats.
TEST(SparseLookup, LookupEqualsTheReferenceRowsAndTheDeduplicatedPath) {
  auto rng = seeded_rng();
  const std::int64_t rows = 50;
  for (const std::int64_t dim : {1, 7, 16, 17, 100, 129}) {
    const auto values = random_values(rows * dim, rng);
    std::vector<std::int64_t> ids(300);
    for (auto& id : ids) id = std::uniform_int_distribution<std::int64_t>(0, rows - 1)(rng);
    std::fill(ids.begin() + 10, ids.begin() + 20, ids[3]);  // a run of one id
    ids.back() = rows - 1;
    std::vector<std::int64_t> one_per_bag(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) one_per_bag[i] = static_cast<std::int64_t>(i);
    for (const EmbeddingStorage storage : kAllStorages) {
      SCOPED_TRACE(std::string(to_string(storage)) + " dim " + std::to_string(dim));
      const auto table =
          EmbeddingTable::from_floats(TensorView<const float>(values.data(), {rows, dim}), storage);
      std::vector<float> got(ids.size() * dim), want(got.size()), bagged(got.size());
      embedding_lookup(table, ids, got);
      for (std::size_t i = 0; i < ids.size(); ++i) table.dequantize_row_ref(ids[i], want.data() + i * dim);
      BagOptions max_of_one;  // a bag of one id in max mode is that row, copied
      max_of_one.mode = BagMode::kMax;
      embedding_bag(table, ids, one_per_bag, max_of_one, bagged);
      ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)));
      ASSERT_EQ(0, std::memcmp(got.data(), bagged.data(), got.size() * sizeof(float)));
    }
  }
}

TEST(SparseLookup, UniqueIdsKeepFirstOccurrenceOrder) {
  const std::vector<std::int64_t> ids = {5, 3, 5, 5, 9, 3, 0};
  UniqueIds u;
  unique_ids(ids, u);
  EXPECT_EQ(u.ids, (std::vector<std::int64_t>{5, 3, 9, 0}));
  EXPECT_EQ(u.occurrences, (std::vector<std::uint32_t>{3, 2, 1, 1}));
  EXPECT_EQ(u.first_position, (std::vector<std::int32_t>{0, 1, 4, 6}));
  EXPECT_EQ(u.inverse, (std::vector<std::int32_t>{0, 1, 0, 0, 2, 1, 3}));
}

}  // namespace
}  // namespace qk
