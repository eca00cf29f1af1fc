// Inputs for the embedding cache: recorded ids from a .npy, synthetic Zipf id streams and synthetic tables.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qk {

// The ids of an integer .npy (any integer dtype, any shape, flattened in C order) as int64. Throws a
// qk::Error naming the file for a non-integer dtype or an empty array. Range checks are the table's.
std::vector<std::int64_t> read_ids(const std::string& path);

struct ZipfStreamOptions {
  std::int64_t rows = 0;    // ids are in [0, rows)
  std::int64_t length = 0;  // number of ids
  double exponent = 1.05;   // P(rank k) proportional to k^-exponent, k = 1..rows
  std::uint64_t seed = 1;
  // If in (0, 1): at this fraction of the stream the popularity ranking is re-drawn (a new random
  // permutation of rows), so the hot set shifts.
  double shift_at = 0.0;
};

// Ranks are drawn by inverse CDF and mapped to rows through a seeded random permutation, so hot rows are
// scattered over the table as in a real vocabulary. Deterministic for a given seed (own generators).
std::vector<std::int64_t> zipf_stream(const ZipfStreamOptions& options);

// A rows x dim float32 table of values uniform in [-1, 1), seeded (for synthetic runs and benchmarks).
std::vector<float> synthetic_table(std::int64_t rows, std::int64_t dim, std::uint64_t seed = 7);

}  // namespace qk
