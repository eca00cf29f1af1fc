// What every rowwise_gather_u8 variant shares: starting the loads of a row ahead, and reading its
// float16 scale and bias (private to the library).
#pragma once

#include <cstdint>
#include <cstring>

#include "quantkit/kernels/rowwise_kernels.hpp"

namespace qk::kernels::detail {

// Starts loading the row of ids[i + kRowwiseGatherPrefetch], if there is one: a line every 64 bytes and
// the row's last byte (rows need not start on a line). The same number of prefetches for every row of a
// table: walking the exact lines instead (2 or 3 for a 104-byte row) made the loop's branch unpredictable
// and cost 25% on a table in cache. always_inline: GCC 12 deduces that a function whose only effect is
// __builtin_prefetch is const and drops calls to it (ipa-pure-const, then dead-code elimination).
[[gnu::always_inline]] inline void prefetch_gather_row(const std::uint8_t* rows, std::int64_t row_bytes,
                                                       const std::int64_t* ids, std::int64_t n,
                                                       std::int64_t i) {
  if (i + kRowwiseGatherPrefetch >= n) return;
  const std::uint8_t* row = rows + ids[i + kRowwiseGatherPrefetch] * row_bytes;
  for (std::int64_t offset = 0; offset < row_bytes; offset += 64) __builtin_prefetch(row + offset);
  __builtin_prefetch(row + row_bytes - 1);
}

// The 4 bytes after a row's dim codes: float16 scale (low half) and float16 bias (high half).
inline std::uint32_t scale_bias_bits(const std::uint8_t* row, std::int64_t dim) {
  std::uint32_t bits;
  std::memcpy(&bits, row + dim, 4);
  return bits;
}

}  // namespace qk::kernels::detail
