// Policy replay without a table, the static-top-k oracles, and the size sweep.
#include "quantkit/embed/cache_replay.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "quantkit/core/error.hpp"
#include "quantkit/embed/row_slot_map.hpp"

namespace qk {

namespace {
std::vector<std::int64_t> counts_of(std::span<const std::int64_t> ids, std::int64_t rows) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(rows), 0);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int64_t id = ids[i];
    if (id < 0 || id >= rows)
      throw Error("id " + std::to_string(id) + " at position " + std::to_string(i) + " is outside [0, " +
                  std::to_string(rows) + ")");
    ++counts[static_cast<std::size_t>(id)];
  }
  return counts;
}

std::vector<std::int64_t> top_of_counts(const std::vector<std::int64_t>& counts, std::int64_t k) {
  std::vector<std::int64_t> order(counts.size());
  std::iota(order.begin(), order.end(), std::int64_t{0});
  k = std::clamp<std::int64_t>(k, 0, static_cast<std::int64_t>(order.size()));
  const auto by_count = [&counts](std::int64_t a, std::int64_t b) {
    const auto ca = counts[static_cast<std::size_t>(a)], cb = counts[static_cast<std::size_t>(b)];
    return ca != cb ? ca > cb : a < b;
  };
  std::partial_sort(order.begin(), order.begin() + k, order.end(), by_count);
  order.resize(static_cast<std::size_t>(k));
  return order;
}
}  // namespace

ReplayResult replay(std::span<const std::int64_t> ids, std::int64_t rows, const ReplayOptions& options) {
  CacheReplacement policy(options.policy, options.capacity, rows, options.aging_window);
  RowSlotMap map(options.capacity);
  if (options.policy == CachePolicy::kStatic) {
    const std::int64_t n =
        std::min<std::int64_t>(options.capacity, static_cast<std::int64_t>(options.static_rows.size()));
    for (std::int64_t s = 0; s < n; ++s) {
      const std::int64_t id = options.static_rows[static_cast<std::size_t>(s)];
      if (id < 0 || id >= rows) throw Error("static cache row " + std::to_string(id) + " is out of range");
      if (map.find(id) >= 0) continue;
      const auto slot = static_cast<std::int32_t>(policy.resident());
      policy.on_insert(slot, id);
      map.insert(id, slot);
    }
  }
  ReplayResult result;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int64_t id = ids[i];
    if (id < 0 || id >= rows)
      throw Error("id " + std::to_string(id) + " at position " + std::to_string(i) + " is outside [0, " +
                  std::to_string(rows) + ")");
    const bool measured = static_cast<std::int64_t>(i) >= options.measure_from;
    result.lookups += measured;
    policy.record(id);
    const std::int32_t slot = map.find(id);
    if (slot >= 0) {
      result.hits += measured;
      policy.on_hit(slot);
      continue;
    }
    const CacheReplacement::Choice choice = policy.choose_slot(id);
    if (choice.slot < 0) {
      result.bypassed += measured;
      continue;
    }
    if (choice.evicted_id >= 0) {
      map.erase(choice.evicted_id);
      result.evictions += measured;
    }
    policy.on_insert(choice.slot, id);
    map.insert(id, choice.slot);
  }
  return result;
}

std::vector<std::int64_t> top_rows(std::span<const std::int64_t> ids, std::int64_t rows, std::int64_t k) {
  return top_of_counts(counts_of(ids, rows), k);
}

OracleHitRates oracle_hit_rates(std::span<const std::int64_t> ids, std::int64_t rows, std::int64_t k,
                                std::int64_t measure_from) {
  measure_from = std::clamp<std::int64_t>(measure_from, 0, static_cast<std::int64_t>(ids.size()));
  const auto measured = ids.subspan(static_cast<std::size_t>(measure_from));
  OracleHitRates rates;
  if (measured.empty()) return rates;
  const std::vector<std::int64_t> counts = counts_of(measured, rows);
  std::int64_t preloaded = 0, demand = 0;
  for (const std::int64_t id : top_of_counts(counts, k)) {
    const std::int64_t c = counts[static_cast<std::size_t>(id)];
    preloaded += c;
    demand += std::max<std::int64_t>(c - 1, 0);  // its first lookup reads the row
  }
  const double n = static_cast<double>(measured.size());
  rates.oracle = static_cast<double>(demand) / n;
  rates.oracle_preloaded = static_cast<double>(preloaded) / n;
  return rates;
}

std::vector<SweepPoint> sweep(std::span<const std::int64_t> ids, std::int64_t rows,
                              const SweepOptions& options) {
  if (ids.empty()) throw Error("sweep: the id stream is empty");
  std::vector<double> fractions = options.fractions;
  if (fractions.empty()) fractions = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5};
  const auto profile_len = static_cast<std::size_t>(std::clamp(options.profile_fraction, 0.0, 1.0) *
                                                    static_cast<double>(ids.size()));
  const std::vector<std::int64_t> profile_counts = counts_of(ids.first(profile_len), rows);
  std::vector<SweepPoint> points;
  for (const double f : fractions) {
    if (!(f > 0.0 && f <= 1.0)) throw Error("sweep: cache fractions must be in (0, 1]");
    SweepPoint p;
    p.cache_fraction = f;
    p.capacity = std::max<std::int64_t>(1, static_cast<std::int64_t>(f * static_cast<double>(rows)));
    ReplayOptions o;
    o.capacity = p.capacity;
    o.policy = CachePolicy::kLru;
    p.lru = replay(ids, rows, o).hit_rate();
    o.policy = CachePolicy::kLfu;
    p.lfu = replay(ids, rows, o).hit_rate();
    o.policy = CachePolicy::kStatic;
    o.static_rows = top_of_counts(profile_counts, p.capacity);
    p.static_profile = replay(ids, rows, o).hit_rate();
    p.oracle = oracle_hit_rates(ids, rows, p.capacity);
    points.push_back(p);
  }
  return points;
}

std::string sweep_chart(const std::vector<SweepPoint>& points, int height) {
  height = std::max(height, 2);
  constexpr int kColumn = 7;
  std::vector<std::string> grid(static_cast<std::size_t>(height + 1),
                                std::string(points.size() * kColumn, ' '));
  const auto plot = [&](std::size_t column, double rate, char mark) {
    const int row = static_cast<int>(std::lround(std::clamp(rate, 0.0, 1.0) * height));
    char& cell = grid[static_cast<std::size_t>(height - row)][column * kColumn + kColumn / 2];
    cell = (cell == ' ' || cell == mark) ? mark : '*';
  };
  for (std::size_t c = 0; c < points.size(); ++c) {
    plot(c, points[c].oracle.oracle, 'O');
    plot(c, points[c].static_profile, 'S');
    plot(c, points[c].lru, 'L');
    plot(c, points[c].lfu, 'F');
  }
  std::string chart;
  for (int r = 0; r <= height; ++r) {
    const double level = static_cast<double>(height - r) / height;
    char label[16];
    std::snprintf(label, sizeof label, "%5.2f |", level);
    chart += label + grid[static_cast<std::size_t>(r)] + "\n";
  }
  chart += "      +" + std::string(points.size() * kColumn, '-') + "\n       ";
  for (const SweepPoint& p : points) {
    char label[16];
    std::snprintf(label, sizeof label, "%6.1f%%", p.cache_fraction * 100.0);
    chart += label;
  }
  chart += "\n       cache size (share of rows); L lru, F lfu, S static, O oracle, * several\n";
  return chart;
}

}  // namespace qk
