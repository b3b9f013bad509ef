// Byte ranges held, as disjoint half-open intervals [start, end), merged when
// they touch. What a ranged download has received of a blob, and what is left.
//
//   IntervalSet held;
//   held.add(0, 100);
//   held.add(200, 300);
//   held.contiguous_from(0);   // 100: the prefix a hasher may read
//   held.gaps(0, 300);         // {[100, 200)}
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace imgpull {

struct Interval {
  uint64_t start = 0;
  uint64_t end = 0;  // one past the last byte
  uint64_t size() const { return end - start; }
  bool operator==(const Interval&) const = default;
};

class IntervalSet {
 public:
  // Adds [start, end), merging with what it touches or overlaps.
  void add(uint64_t start, uint64_t end) {
    if (start >= end) return;
    auto it = spans_.upper_bound(start);
    if (it != spans_.begin() && std::prev(it)->second >= start) --it;
    while (it != spans_.end() && it->first <= end) {
      start = std::min(start, it->first);
      end = std::max(end, it->second);
      it = spans_.erase(it);
    }
    spans_.emplace(start, end);
  }

  // The end of the interval holding `from`, or `from` when none does.
  uint64_t contiguous_from(uint64_t from) const {
    auto it = spans_.upper_bound(from);
    if (it == spans_.begin()) return from;
    --it;
    return it->second > from ? it->second : from;
  }

  // What is missing of [start, end), in order.
  std::vector<Interval> gaps(uint64_t start, uint64_t end) const {
    std::vector<Interval> out;
    uint64_t at = start;
    for (auto it = spans_.begin(); it != spans_.end() && at < end; ++it) {
      if (it->second <= at) continue;
      if (it->first > at) out.push_back({at, std::min(it->first, end)});
      at = std::max(at, it->second);
    }
    if (at < end) out.push_back({at, end});
    return out;
  }

  // Bytes held.
  uint64_t total() const {
    uint64_t n = 0;
    for (const auto& [s, e] : spans_) n += e - s;
    return n;
  }

  std::vector<Interval> intervals() const {
    std::vector<Interval> out;
    for (const auto& [s, e] : spans_) out.push_back({s, e});
    return out;
  }

  bool empty() const { return spans_.empty(); }
  void clear() { spans_.clear(); }

 private:
  std::map<uint64_t, uint64_t> spans_;  // start -> end
};

}  // namespace imgpull
