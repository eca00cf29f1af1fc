// The hot-row cache's id -> slot index: open addressing with linear probing in a power-of-two table kept
// at most half full, and backward-shift deletion (no tombstones, so probe lengths never degrade on a
// long-running stream with constant churn). Not thread-safe: HotRowCache guards it with its mutex.
#pragma once

#include <cstdint>
#include <vector>

namespace qk {

class RowSlotMap {
 public:
  explicit RowSlotMap(std::int64_t capacity = 0) { reset(capacity); }

  // Empties the map and sizes it for `capacity` entries.
  void reset(std::int64_t capacity) {
    const std::size_t size = table_size(capacity);
    keys_.assign(size, kEmpty);
    slots_.assign(size, -1);
    mask_ = size - 1;
    count_ = 0;
  }

  // The slot of id, or -1.
  std::int32_t find(std::int64_t id) const {
    for (std::size_t i = home(id);; i = (i + 1) & mask_) {
      if (keys_[i] == id) return slots_[i];
      if (keys_[i] == kEmpty) return -1;
    }
  }

  // Inserts or overwrites id -> slot.
  void insert(std::int64_t id, std::int32_t slot) {
    std::size_t i = home(id);
    while (keys_[i] != kEmpty && keys_[i] != id) i = (i + 1) & mask_;
    if (keys_[i] == kEmpty) ++count_;
    keys_[i] = id;
    slots_[i] = slot;
  }

  void erase(std::int64_t id) {
    std::size_t i = home(id);
    while (keys_[i] != id) {
      if (keys_[i] == kEmpty) return;
      i = (i + 1) & mask_;
    }
    // Backward shift: move later entries of the probe run into the hole when their home allows it.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask_; keys_[j] != kEmpty; j = (j + 1) & mask_) {
      const std::size_t h = home(keys_[j]);
      // Entry j may fill the hole if its home is not cyclically within (hole, j].
      const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
      if (!stays) {
        keys_[hole] = keys_[j];
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    keys_[hole] = kEmpty;
    slots_[hole] = -1;
    --count_;
  }

  std::int64_t size() const { return count_; }
  // What bytes() is for a map sized for `capacity` entries.
  static std::int64_t bytes_for(std::int64_t capacity) {
    return static_cast<std::int64_t>(table_size(capacity) * (sizeof(std::int64_t) + sizeof(std::int32_t)));
  }
  std::int64_t bytes() const {
    return static_cast<std::int64_t>(keys_.size() * sizeof(std::int64_t) +
                                     slots_.size() * sizeof(std::int32_t));
  }

 private:
  static constexpr std::int64_t kEmpty = -1;  // ids are never negative
  static std::size_t table_size(std::int64_t capacity) {
    std::size_t size = 16;
    while (size < static_cast<std::size_t>(capacity) * 2) size *= 2;
    return size;
  }
  std::size_t home(std::int64_t id) const {
    // splitmix64's finalizer: consecutive ids land far apart.
    std::uint64_t x = static_cast<std::uint64_t>(id);
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return static_cast<std::size_t>(x) & mask_;
  }

  std::vector<std::int64_t> keys_;
  std::vector<std::int32_t> slots_;
  std::size_t mask_ = 0;
  std::int64_t count_ = 0;
};

}  // namespace qk
