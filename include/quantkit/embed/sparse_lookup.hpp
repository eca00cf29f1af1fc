// Sparse embedding lookups and bags over a row source (a table directly, or a HotRowCache in front of
// it). A bag batch, and a cached lookup batch, is de-duplicated first: each unique row is fetched (from
// the cache or the table) and dequantized once per batch, then accumulated (bag) or copied (lookup) for
// each of its occurrences. The uncached lookup does not de-duplicate: it dequantizes every id straight
// into its output slot, the loads of later rows started ahead. Measured, that never loses: a repeated id
// in a batch is a row the CPU's caches hold, so dequantizing it again costs about what copying its floats
// costs, while hashing every id does not pay (with the same per-row dequantizer, dropping the
// de-duplication alone took the int8 lookup from 1.4x to 2.4x of a float32 gather's rows/s on 100k x 100
// with Zipf(1.0) ids, from 2.4x to 3.4x on 1M x 256 with Zipf(1.05), from 0.49x to 0.63x on English
// text ids; README, "Small tables"). A row's floats are the same bits on every path.
//
// Bags follow torch.nn.functional.embedding_bag: offsets[b] is where bag b starts in ids (offsets[0] must
// be 0, offsets non-decreasing, at most ids.size()); with include_last_offset the last offset is the end
// of the last bag. sum adds rows (times per_sample_weights[j] if given; sum mode only, as PyTorch), mean
// divides the sum by the bag's size, max takes the elementwise maximum; an empty bag is all zeros.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "quantkit/embed/embedding_table.hpp"
#include "quantkit/embed/rowwise.hpp"

namespace qk {

// The unique ids of a batch in first-occurrence order, each id's occurrence count, and for every
// position the index of its id among the unique ones.
struct UniqueIds {
  std::vector<std::int64_t> ids;
  std::vector<std::uint32_t> occurrences;
  std::vector<std::int32_t> first_position;
  std::vector<std::int32_t> inverse;
};
void unique_ids(std::span<const std::int64_t> ids, UniqueIds& out);
// out holds one row of dim floats per id, those of each unique id's first position filled: copies them to
// the id's later positions.
void copy_repeats(const UniqueIds& unique, std::int64_t dim, float* out);

// Checks offsets against n_ids and returns the number of bags; throws qk::Error naming the problem.
std::int64_t check_bag_offsets(std::span<const std::int64_t> offsets, std::int64_t n_ids,
                               bool include_last_offset);

struct BagOptions {
  BagMode mode = BagMode::kSum;
  std::span<const float> per_sample_weights;  // empty, or one per id (sum mode)
  bool include_last_offset = false;
};

// Accumulates bags from the batch's unique rows (unique_rows: unique.ids.size() x dim floats).
void accumulate_bags(const UniqueIds& unique, const float* unique_rows, std::int64_t dim,
                     std::span<const std::int64_t> offsets, const BagOptions& options, std::span<float> out);

// The uncached sparse path: out is ids.size() x dim.
void embedding_lookup(const EmbeddingTable& table, std::span<const std::int64_t> ids, std::span<float> out);
// The uncached bag: out is bags x dim.
void embedding_bag(const EmbeddingTable& table, std::span<const std::int64_t> ids,
                   std::span<const std::int64_t> offsets, const BagOptions& options, std::span<float> out);

// The dense baseline the sparse path replaces: one-hot(ids) [n x rows] times the dequantized table
// [rows x dim], O(n * rows * dim). Only for small vocabularies (throws above max_rows); table_f32 is the
// dequantized table, row-major.
void dense_onehot_lookup(std::span<const float> table_f32, std::int64_t rows, std::int64_t dim,
                         std::span<const std::int64_t> ids, std::span<float> out,
                         std::int64_t max_rows = 1 << 16);

}  // namespace qk
