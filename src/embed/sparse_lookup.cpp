// De-duplication, bag accumulation, the uncached sparse lookup and bag, and the dense one-hot baseline.
#include "quantkit/embed/sparse_lookup.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cstring>

#include "quantkit/core/error.hpp"
#include "quantkit/kernels/aligned_vector.hpp"

namespace qk {

namespace {
std::uint64_t mix(std::int64_t id) {
  std::uint64_t x = static_cast<std::uint64_t>(id);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

void check_out(std::span<float> out, std::int64_t rows, std::int64_t dim, const char* what) {
  if (static_cast<std::int64_t>(out.size()) != rows * dim)
    throw Error(std::string(what) + ": the output holds " + std::to_string(out.size()) +
                " floats, expected " + std::to_string(rows) + " x " + std::to_string(dim));
}
}  // namespace

void unique_ids(std::span<const std::int64_t> ids, UniqueIds& out) {
  if (ids.size() > static_cast<std::size_t>(INT32_MAX)) throw Error("a batch holds at most 2^31 - 1 ids");
  out.ids.clear();
  out.occurrences.clear();
  out.first_position.clear();
  out.inverse.resize(ids.size());
  std::size_t size = 16;
  while (size < ids.size() * 2) size *= 2;
  // Slot -> unique index + 1 (0 = empty); a per-thread table so a batch allocates nothing when warm.
  thread_local std::vector<std::int32_t> table;
  table.assign(size, 0);
  const std::size_t mask = size - 1;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int64_t id = ids[i];
    std::size_t h = mix(id) & mask;
    for (;;) {
      const std::int32_t u = table[h];
      if (u == 0) {
        table[h] = static_cast<std::int32_t>(out.ids.size()) + 1;
        out.inverse[i] = static_cast<std::int32_t>(out.ids.size());
        out.ids.push_back(id);
        out.occurrences.push_back(1);
        out.first_position.push_back(static_cast<std::int32_t>(i));
        break;
      }
      if (out.ids[static_cast<std::size_t>(u - 1)] == id) {
        out.inverse[i] = u - 1;
        ++out.occurrences[static_cast<std::size_t>(u - 1)];
        break;
      }
      h = (h + 1) & mask;
    }
  }
}

void copy_repeats(const UniqueIds& unique, std::int64_t dim, float* out) {
  for (std::size_t i = 0; i < unique.inverse.size(); ++i) {
    const std::int32_t first = unique.first_position[static_cast<std::size_t>(unique.inverse[i])];
    if (first != static_cast<std::int32_t>(i))
      std::memcpy(out + static_cast<std::int64_t>(i) * dim, out + std::int64_t{first} * dim,
                  static_cast<std::size_t>(dim) * 4);
  }
}

std::int64_t check_bag_offsets(std::span<const std::int64_t> offsets, std::int64_t n_ids,
                               bool include_last_offset) {
  if (offsets.empty()) {
    if (include_last_offset) throw Error("embedding bag: include_last_offset needs at least one offset");
    if (n_ids != 0) throw Error("embedding bag: no offsets given for " + std::to_string(n_ids) + " ids");
    return 0;
  }
  if (offsets[0] != 0)
    throw Error("embedding bag: offsets[0] must be 0 (the first bag starts at the first id), got " +
                std::to_string(offsets[0]));
  for (std::size_t b = 1; b < offsets.size(); ++b) {
    if (offsets[b] < offsets[b - 1])
      throw Error("embedding bag: offsets are not monotone: offsets[" + std::to_string(b) +
                  "] = " + std::to_string(offsets[b]) + " < offsets[" + std::to_string(b - 1) +
                  "] = " + std::to_string(offsets[b - 1]));
  }
  if (offsets.back() > n_ids)
    throw Error("embedding bag: the last offset " + std::to_string(offsets.back()) + " exceeds the " +
                std::to_string(n_ids) + " ids");
  return include_last_offset ? static_cast<std::int64_t>(offsets.size()) - 1
                             : static_cast<std::int64_t>(offsets.size());
}

void accumulate_bags(const UniqueIds& unique, const float* unique_rows, std::int64_t dim,
                     std::span<const std::int64_t> offsets, const BagOptions& options, std::span<float> out) {
  const auto n_ids = static_cast<std::int64_t>(unique.inverse.size());
  const std::int64_t bags = check_bag_offsets(offsets, n_ids, options.include_last_offset);
  check_out(out, bags, dim, "embedding bag");
  const bool weighted = !options.per_sample_weights.empty();
  if (weighted && (static_cast<std::int64_t>(options.per_sample_weights.size()) != n_ids ||
                   options.mode != BagMode::kSum))
    throw Error("embedding bag: per-sample weights need one weight per id and sum mode");
  for (std::int64_t b = 0; b < bags; ++b) {
    const std::int64_t begin = offsets[static_cast<std::size_t>(b)];
    const std::int64_t end =
        b + 1 < static_cast<std::int64_t>(offsets.size()) ? offsets[static_cast<std::size_t>(b + 1)] : n_ids;
    float* acc = out.data() + b * dim;
    std::fill(acc, acc + dim, 0.0f);
    for (std::int64_t j = begin; j < end; ++j) {
      const float* row = unique_rows + std::int64_t{unique.inverse[static_cast<std::size_t>(j)]} * dim;
      if (options.mode == BagMode::kMax) {
        if (j == begin) {
          std::memcpy(acc, row, static_cast<std::size_t>(dim) * 4);
        } else {
          for (std::int64_t d = 0; d < dim; ++d) acc[d] = std::max(acc[d], row[d]);
        }
      } else if (weighted) {
        const float w = options.per_sample_weights[static_cast<std::size_t>(j)];
        for (std::int64_t d = 0; d < dim; ++d) acc[d] += w * row[d];
      } else {
        for (std::int64_t d = 0; d < dim; ++d) acc[d] += row[d];
      }
    }
    if (options.mode == BagMode::kMean && end > begin) {
      const auto count = static_cast<float>(end - begin);
      for (std::int64_t d = 0; d < dim; ++d) acc[d] /= count;
    }
  }
}

void embedding_lookup(const EmbeddingTable& table, std::span<const std::int64_t> ids, std::span<float> out) {
  check_out(out, static_cast<std::int64_t>(ids.size()), table.dim(), "embedding lookup");
  table.check_ids(ids, "embedding lookup");
  // Each id straight into its output slot, repeats included: no de-duplication (see the header).
  table.dequantize_rows(ids, out.data());
}

void embedding_bag(const EmbeddingTable& table, std::span<const std::int64_t> ids,
                   std::span<const std::int64_t> offsets, const BagOptions& options, std::span<float> out) {
  const std::int64_t dim = table.dim();
  check_bag_offsets(offsets, static_cast<std::int64_t>(ids.size()), options.include_last_offset);
  table.check_ids(ids, "embedding bag");
  thread_local UniqueIds unique;
  thread_local kernels::AlignedVector<float> rows;
  unique_ids(ids, unique);
  rows.resize(unique.ids.size() * static_cast<std::size_t>(dim));
  table.dequantize_rows(unique.ids, rows.data());
  accumulate_bags(unique, rows.data(), dim, offsets, options, out);
}

void dense_onehot_lookup(std::span<const float> table_f32, std::int64_t rows, std::int64_t dim,
                         std::span<const std::int64_t> ids, std::span<float> out, std::int64_t max_rows) {
  if (rows > max_rows)
    throw Error("dense one-hot lookup: " + std::to_string(rows) + " rows is above the limit of " +
                std::to_string(max_rows) + " (the dense form costs batch x rows x dim)");
  if (static_cast<std::int64_t>(table_f32.size()) != rows * dim)
    throw Error("dense one-hot lookup: the table holds the wrong number of floats");
  check_out(out, static_cast<std::int64_t>(ids.size()), dim, "dense one-hot lookup");
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const Matrix> table(table_f32.data(), rows, dim);
  constexpr std::int64_t kChunk = 64;  // one-hot rows built at a time: bounded memory, same arithmetic
  Matrix onehot(kChunk, rows);
  for (std::int64_t start = 0; start < static_cast<std::int64_t>(ids.size()); start += kChunk) {
    const std::int64_t n = std::min<std::int64_t>(kChunk, static_cast<std::int64_t>(ids.size()) - start);
    onehot.setZero();
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t id = ids[static_cast<std::size_t>(start + i)];
      if (id < 0 || id >= rows)
        throw Error("dense one-hot lookup: id " + std::to_string(id) + " is outside [0, " +
                    std::to_string(rows) + ")");
      onehot(i, id) = 1.0f;
    }
    Eigen::Map<Matrix> y(out.data() + start * dim, n, dim);
    y.noalias() = onehot.topRows(n) * table;
  }
}

}  // namespace qk
