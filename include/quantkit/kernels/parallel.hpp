// A small persistent thread pool that splits a range of rows; the caller's thread takes the first part.
#pragma once

#include <cstdint>
#include <functional>

namespace qk::kernels {

// Calls fn(begin, end) on `threads` contiguous parts of [0, n) whose boundaries are multiples of `grain`
// (fewer parts when n is small), and returns when all are done. threads <= 1 runs fn(0, n) inline.
// An exception thrown by fn is rethrown here (the first one). Calls from several threads are serialized.
void parallel_for(std::int64_t n, int threads, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& fn);

}  // namespace qk::kernels
