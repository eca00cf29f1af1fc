// Replacement policies of the hot-row cache, over slots 0..capacity-1 (the slab rows):
//   lru     evict the least recently used slot (a doubly linked list; a hit moves its slot to the front).
//   lfu     frequency counts for every row of the table (4 bytes a row), halved all together every
//           `aging_window` counted lookups so that a shifting stream's old favourites fade (TinyLFU's
//           reset); resident rows sit in a min-heap by count. A missing row is admitted only if it has
//           been seen more often than the least frequent resident row (TinyLFU's admission rule), so one
//           cold id never pushes out a hot row. Halving keeps the heap order (floor(x/2) is monotone).
//   static  a fixed set of rows (top-k of a frequency profile) loaded once; never admits or evicts.
// The same object drives the real cache and the replay simulator (embed/cache_replay.hpp), so the
// hit-rate curves qtool prints are the policy the cache runs. Not thread-safe (the cache locks).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace qk {

enum class CachePolicy { kLru, kLfu, kStatic };

const char* to_string(CachePolicy policy);  // "lru", "lfu", "static"
CachePolicy parse_cache_policy(const std::string& text);

class CacheReplacement {
 public:
  // rows: the table's row count (LFU counts every row). aging_window 0 means 10 x capacity (TinyLFU's
  // sample size), but at least rows / 16.
  CacheReplacement(CachePolicy policy, std::int64_t capacity, std::int64_t rows,
                   std::int64_t aging_window = 0);

  CachePolicy policy() const { return policy_; }
  std::int64_t capacity() const { return capacity_; }
  std::int64_t aging_window() const { return aging_window_; }

  // Counts `occurrences` lookups of id (LFU; a no-op otherwise). Call before on_hit / choose_slot.
  void record(std::int64_t id, std::uint32_t occurrences = 1);
  // id, resident in slot, was looked up.
  void on_hit(std::int32_t slot);

  struct Choice {
    std::int32_t slot = -1;        // -1: do not admit (bypass the cache)
    std::int64_t evicted_id = -1;  // the id that held slot, or -1 if it was free
  };
  // Where to put a missing id: a free slot, a victim's slot, or none. force skips LFU's admission test
  // and lifts the row's count just above the evicted row's (a prefetch installs rows the next batch is
  // known to use). A returned slot must be filled with
  // on_insert before the next choose_slot.
  Choice choose_slot(std::int64_t id, bool force = false);
  // id now occupies slot (after choose_slot, or for the static policy's initial load).
  void on_insert(std::int32_t slot, std::int64_t id);

  std::int64_t resident() const { return resident_; }
  std::int64_t id_in_slot(std::int32_t slot) const { return slot_id_[static_cast<std::size_t>(slot)]; }
  std::uint32_t count(std::int64_t id) const {
    return counts_.empty() ? 0 : counts_[static_cast<std::size_t>(id)];
  }
  // Bytes of policy state (lists, heap, counts).
  std::int64_t bytes() const;
  // What bytes() is for a policy of this capacity over a table of `rows` rows, before it is built.
  static std::int64_t bytes_for(CachePolicy policy, std::int64_t capacity, std::int64_t rows);

 private:
  void lru_unlink(std::int32_t slot);
  void lru_push_front(std::int32_t slot);
  void heap_sift_down(std::int64_t pos);
  void heap_sift_up(std::int64_t pos);
  std::uint32_t key(std::int32_t slot) const { return counts_[static_cast<std::size_t>(slot_id_[slot])]; }
  void heap_swap(std::int64_t a, std::int64_t b);
  void age();

  CachePolicy policy_;
  std::int64_t capacity_;
  std::int64_t aging_window_;
  std::int64_t resident_ = 0;
  std::vector<std::int64_t> slot_id_;  // id held by each slot, -1 if free
  // lru
  std::vector<std::int32_t> prev_, next_;
  std::int32_t head_ = -1, tail_ = -1;
  // lfu
  std::vector<std::uint32_t> counts_;
  std::vector<std::int32_t> heap_;      // slots, min count at heap_[0]
  std::vector<std::int32_t> heap_pos_;  // position of each slot in heap_
  std::int64_t since_aging_ = 0;
};

}  // namespace qk
