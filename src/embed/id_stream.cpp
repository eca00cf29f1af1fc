// Synthetic Zipf id streams and synthetic tables.
#include "quantkit/embed/id_stream.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "quantkit/core/error.hpp"

namespace qk {

namespace {
// Uniform in [0, 1) from 53 random bits.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
// Uniform in [0, n) by multiply-shift (Lemire), without modulo bias worth mentioning at n << 2^64.
std::uint64_t below(std::mt19937_64& rng, std::uint64_t n) {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(rng()) * n) >> 64);
}
std::vector<std::int64_t> permutation(std::int64_t n, std::mt19937_64& rng) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), std::int64_t{0});
  for (std::int64_t i = n - 1; i > 0; --i)
    std::swap(p[static_cast<std::size_t>(i)], p[below(rng, static_cast<std::uint64_t>(i + 1))]);
  return p;
}
}  // namespace

std::vector<std::int64_t> zipf_stream(const ZipfStreamOptions& options) {
  if (options.rows <= 0) throw Error("zipf stream: rows must be positive");
  if (options.length < 0) throw Error("zipf stream: length must not be negative");
  if (!(options.exponent >= 0.0) || !std::isfinite(options.exponent))
    throw Error("zipf stream: the exponent must be a finite number >= 0");
  std::vector<double> cdf(static_cast<std::size_t>(options.rows));
  double total = 0.0;
  for (std::int64_t k = 0; k < options.rows; ++k) {
    total += std::pow(static_cast<double>(k + 1), -options.exponent);
    cdf[static_cast<std::size_t>(k)] = total;
  }
  std::mt19937_64 rng(options.seed);
  std::vector<std::int64_t> rank_to_row = permutation(options.rows, rng);
  const std::int64_t shift =
      options.shift_at > 0.0 && options.shift_at < 1.0
          ? static_cast<std::int64_t>(options.shift_at * static_cast<double>(options.length))
          : -1;
  std::vector<std::int64_t> ids(static_cast<std::size_t>(options.length));
  for (std::int64_t i = 0; i < options.length; ++i) {
    if (i == shift) rank_to_row = permutation(options.rows, rng);
    const double u = uniform01(rng) * total;
    const auto rank = static_cast<std::size_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    ids[static_cast<std::size_t>(i)] = rank_to_row[std::min(rank, cdf.size() - 1)];
  }
  return ids;
}

std::vector<float> synthetic_table(std::int64_t rows, std::int64_t dim, std::uint64_t seed) {
  if (rows <= 0 || dim <= 0) throw Error("synthetic table: rows and dim must be positive");
  std::vector<float> table(static_cast<std::size_t>(rows * dim));
  SyntheticTableGenerator(seed).next(table.data(), rows * dim);
  return table;
}

}  // namespace qk
