// Inputs for the embedding cache: synthetic Zipf id streams and synthetic tables (recorded ids from a .npy:
// files/embedding_file.hpp).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace qk {

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

// The same values a chunk at a time, in row-major order: a table too large for RAM streamed to disk
// (files/row_store.hpp) equals the in-RAM synthetic_table of the same seed.
class SyntheticTableGenerator {
 public:
  explicit SyntheticTableGenerator(std::uint64_t seed = 7) : rng_(seed) {}
  void next(float* out, std::int64_t count) {
    for (std::int64_t i = 0; i < count; ++i)
      out[i] = static_cast<float>(static_cast<double>(rng_() >> 40) * 0x1.0p-23 - 1.0);
  }

 private:
  std::mt19937_64 rng_;
};

}  // namespace qk
