#include "pull/connection_budget.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace imgpull {
namespace {

using Clock = ConnectionBudget::Clock;
using std::chrono::milliseconds;

// A link where each connection gets `per_connection` bytes/s and all of them
// together at most `link`: how the budget grows over `seconds` of a pull.
int grown_to(double per_connection, double link, int initial, int max, double seconds = 5) {
  ConnectionBudget budget(initial, max);
  budget.saw_first_byte(milliseconds(50));
  Clock::time_point t{};
  double bytes = 0;
  int n = budget.target();
  for (int ms = 0; ms < seconds * 1000; ms += 10) {
    bytes += std::min(link, per_connection * n) * 0.010;
    t += milliseconds(10);
    n = budget.update(t, static_cast<uint64_t>(bytes));
  }
  return n;
}

TEST(ConnectionBudget, GrowsWhileEachConnectionIsCappedAndStopsAtTheLink) {
  // 20 MB/s per connection, 160 MB/s in all: 8 connections fill it.
  int n = grown_to(20e6, 160e6, 4, 32);
  EXPECT_GE(n, 8);
  EXPECT_LE(n, 13) << "one step beyond 8 shows no gain and stops it";
}

TEST(ConnectionBudget, StaysSmallWhereOneConnectionFillsTheLink) {
  EXPECT_EQ(grown_to(500e6, 500e6, 4, 32), 6) << "one step is tried, it does not pay";
}

TEST(ConnectionBudget, NeverBeyondItsMaximum) {
  EXPECT_EQ(grown_to(1e6, 1e12, 4, 10), 10);
  EXPECT_EQ(grown_to(1e6, 1e12, 20, 10), 10);
}

TEST(ConnectionBudget, ANewConnectionIsNotJudgedBeforeItsFirstByte) {
  // With 300 ms to a first byte, a 200 ms window right after a step would see
  // no gain yet; the budget waits for the answers before it measures.
  ConnectionBudget budget(4, 32);
  budget.saw_first_byte(milliseconds(300));
  Clock::time_point t{};
  double bytes = 0;
  int n = budget.target();
  int active = 0;  // connections that got their first byte
  Clock::time_point changed = t;
  int last = n;
  for (int ms = 0; ms < 8000; ms += 10) {
    if (n != last) {
      changed = t;
      last = n;
    }
    active = t - changed >= milliseconds(300) ? n : std::min(active, n);
    if (active == 0) active = n;
    bytes += std::min(160e6, 20e6 * active) * 0.010;
    t += milliseconds(10);
    n = budget.update(t, static_cast<uint64_t>(bytes));
  }
  EXPECT_GE(n, 8);
}

}  // namespace
}  // namespace imgpull
