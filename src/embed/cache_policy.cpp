// LRU, aging LFU and static replacement over the hot-row cache's slots.
#include "quantkit/embed/cache_policy.hpp"

#include <algorithm>
#include <utility>

#include "quantkit/core/error.hpp"

namespace qk {

const char* to_string(CachePolicy policy) {
  switch (policy) {
    case CachePolicy::kLru:
      return "lru";
    case CachePolicy::kLfu:
      return "lfu";
    case CachePolicy::kStatic:
      return "static";
  }
  return "?";
}

CachePolicy parse_cache_policy(const std::string& text) {
  if (text == "lru") return CachePolicy::kLru;
  if (text == "lfu") return CachePolicy::kLfu;
  if (text == "static") return CachePolicy::kStatic;
  throw Error("unknown cache policy '" + text + "' (expected lru, lfu or static)");
}

CacheReplacement::CacheReplacement(CachePolicy policy, std::int64_t capacity, std::int64_t rows,
                                   std::int64_t aging_window)
    : policy_(policy),
      capacity_(capacity),
      // Halving touches every row, so the default window is also at least rows / 16 lookups: the
      // halving then costs under 16 operations per lookup, amortized.
      aging_window_(aging_window > 0 ? aging_window : std::max(10 * capacity, rows / 16)) {
  if (capacity < 0) throw Error("cache capacity must not be negative");
  if (capacity > INT32_MAX) throw Error("cache capacity above 2^31 rows");
  if (rows <= 0) throw Error("the cache needs a table with at least one row");
  aging_window_ = std::max<std::int64_t>(aging_window_, 1);
  slot_id_.assign(static_cast<std::size_t>(capacity), -1);
  if (policy == CachePolicy::kLru) {
    prev_.assign(static_cast<std::size_t>(capacity), -1);
    next_.assign(static_cast<std::size_t>(capacity), -1);
  } else if (policy == CachePolicy::kLfu) {
    counts_.assign(static_cast<std::size_t>(rows), 0);
    heap_.reserve(static_cast<std::size_t>(capacity));
    heap_pos_.assign(static_cast<std::size_t>(capacity), -1);
  }
}

std::int64_t CacheReplacement::bytes() const {
  return static_cast<std::int64_t>(slot_id_.size() * 8 + (prev_.size() + next_.size()) * 4 +
                                   counts_.size() * 4 + (heap_.capacity() + heap_pos_.size()) * 4);
}

std::int64_t CacheReplacement::bytes_for(CachePolicy policy, std::int64_t capacity, std::int64_t rows) {
  switch (policy) {
    case CachePolicy::kLru:
      return capacity * (8 + 4 + 4);
    case CachePolicy::kLfu:
      return capacity * (8 + 4 + 4) + rows * 4;
    case CachePolicy::kStatic:
      return capacity * 8;
  }
  return 0;
}

void CacheReplacement::record(std::int64_t id, std::uint32_t occurrences) {
  if (policy_ != CachePolicy::kLfu || capacity_ == 0) return;
  std::uint32_t& c = counts_[static_cast<std::size_t>(id)];
  c = c > UINT32_MAX - occurrences ? UINT32_MAX : c + occurrences;
  since_aging_ += occurrences;
  if (since_aging_ >= aging_window_) age();
}

void CacheReplacement::age() {
  for (std::uint32_t& c : counts_) c >>= 1;
  since_aging_ = 0;
}

void CacheReplacement::on_hit(std::int32_t slot) {
  if (policy_ == CachePolicy::kLru) {
    if (head_ != slot) {
      lru_unlink(slot);
      lru_push_front(slot);
    }
  } else if (policy_ == CachePolicy::kLfu) {
    heap_sift_down(heap_pos_[static_cast<std::size_t>(slot)]);  // its count only grew
  }
}

CacheReplacement::Choice CacheReplacement::choose_slot(std::int64_t id, bool force) {
  Choice choice;
  if (policy_ == CachePolicy::kStatic || capacity_ == 0) return choice;
  if (resident_ < capacity_) {
    choice.slot = static_cast<std::int32_t>(resident_);  // slots fill in order and are never freed
    return choice;
  }
  if (policy_ == CachePolicy::kLru) {
    choice.slot = tail_;
    lru_unlink(tail_);
  } else {
    const std::int32_t victim = heap_.front();
    std::uint32_t& count = counts_[static_cast<std::size_t>(id)];
    // Not seen more often than the least frequent resident row: keep the resident one.
    if (!force && count <= key(victim)) return choice;
    // A prefetched row enters just above the least frequent resident row, so that the rows installed
    // after it (the rest of its batch, the misses of the batch running now) do not evict it before its
    // batch runs; unused, it ages out like any other row.
    if (force) count = std::max(count, key(victim) == UINT32_MAX ? UINT32_MAX : key(victim) + 1);
    choice.slot = victim;
    heap_swap(0, static_cast<std::int64_t>(heap_.size()) - 1);
    heap_.pop_back();
    heap_pos_[static_cast<std::size_t>(victim)] = -1;
    if (!heap_.empty()) heap_sift_down(0);
  }
  choice.evicted_id = slot_id_[static_cast<std::size_t>(choice.slot)];
  slot_id_[static_cast<std::size_t>(choice.slot)] = -1;
  --resident_;
  return choice;
}

void CacheReplacement::on_insert(std::int32_t slot, std::int64_t id) {
  slot_id_[static_cast<std::size_t>(slot)] = id;
  ++resident_;
  if (policy_ == CachePolicy::kLru) {
    lru_push_front(slot);
  } else if (policy_ == CachePolicy::kLfu) {
    heap_pos_[static_cast<std::size_t>(slot)] = static_cast<std::int32_t>(heap_.size());
    heap_.push_back(slot);
    heap_sift_up(static_cast<std::int64_t>(heap_.size()) - 1);
  }
}

void CacheReplacement::lru_unlink(std::int32_t slot) {
  const std::int32_t p = prev_[static_cast<std::size_t>(slot)], n = next_[static_cast<std::size_t>(slot)];
  if (p >= 0)
    next_[static_cast<std::size_t>(p)] = n;
  else
    head_ = n;
  if (n >= 0)
    prev_[static_cast<std::size_t>(n)] = p;
  else
    tail_ = p;
  prev_[static_cast<std::size_t>(slot)] = next_[static_cast<std::size_t>(slot)] = -1;
}

void CacheReplacement::lru_push_front(std::int32_t slot) {
  prev_[static_cast<std::size_t>(slot)] = -1;
  next_[static_cast<std::size_t>(slot)] = head_;
  if (head_ >= 0) prev_[static_cast<std::size_t>(head_)] = slot;
  head_ = slot;
  if (tail_ < 0) tail_ = slot;
}

void CacheReplacement::heap_swap(std::int64_t a, std::int64_t b) {
  std::swap(heap_[static_cast<std::size_t>(a)], heap_[static_cast<std::size_t>(b)]);
  heap_pos_[static_cast<std::size_t>(heap_[static_cast<std::size_t>(a)])] = static_cast<std::int32_t>(a);
  heap_pos_[static_cast<std::size_t>(heap_[static_cast<std::size_t>(b)])] = static_cast<std::int32_t>(b);
}

void CacheReplacement::heap_sift_up(std::int64_t pos) {
  while (pos > 0) {
    const std::int64_t parent = (pos - 1) / 2;
    if (key(heap_[static_cast<std::size_t>(parent)]) <= key(heap_[static_cast<std::size_t>(pos)])) break;
    heap_swap(pos, parent);
    pos = parent;
  }
}

void CacheReplacement::heap_sift_down(std::int64_t pos) {
  const std::int64_t n = static_cast<std::int64_t>(heap_.size());
  for (;;) {
    const std::int64_t left = 2 * pos + 1;
    if (left >= n) break;
    std::int64_t child = left;
    if (left + 1 < n &&
        key(heap_[static_cast<std::size_t>(left + 1)]) < key(heap_[static_cast<std::size_t>(left)]))
      child = left + 1;
    if (key(heap_[static_cast<std::size_t>(pos)]) <= key(heap_[static_cast<std::size_t>(child)])) break;
    heap_swap(pos, child);
    pos = child;
  }
}

}  // namespace qk
