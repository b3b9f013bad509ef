#include "pull/range_plan.h"

#include <gtest/gtest.h>

namespace imgpull {
namespace {

constexpr uint64_t MiB = 1 << 20;

// Receives `n` bytes of a piece, as a connection would (its first answer
// came with them).
void receive(RangePlan& plan, const Piece& p, uint64_t n) {
  plan.answered(p.id);
  uint64_t got = plan.accept(p.id, n);
  ASSERT_EQ(got, n);
}

// A clock that stands still: no piece has a rate, so sizes alone decide
// (FastRangesAreLeftToFinish moves one by hand).
std::chrono::steady_clock::time_point frozen() { return {}; }

TEST(RangePlan, SmallBlobsAreWholeAndUrgentOnesGoFirst) {
  RangePlan plan({.min_split_bytes = 4 * MiB, .now = frozen});
  size_t layer = plan.add_blob(MiB, 0, /*splittable=*/false);
  size_t config = plan.add_blob(2000, 1, false);
  auto first = plan.next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->blob, config);
  EXPECT_FALSE(first->ranged);
  auto second = plan.next();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->blob, layer);
  EXPECT_EQ(second->start, 0u);
  EXPECT_EQ(second->end, MiB);
  EXPECT_FALSE(plan.next()) << "nothing left, and whole blobs are never split";
}

// A blob whose ingest file another process holds is set aside: the next
// piece is another blob's, the busy one takes no slot of
// max_blobs_in_flight, and it comes back only after retry_busy().
TEST(RangePlan, ABusyBlobIsSetAsideUntilRetried) {
  RangePlan plan({.min_split_bytes = MiB, .max_blobs_in_flight = 1, .biggest_first = false, .now = frozen});
  size_t theirs = plan.add_unopened_blob(10 * MiB, 0, true);
  size_t ours = plan.add_unopened_blob(10 * MiB, 0, true);
  auto tried = plan.next();
  ASSERT_TRUE(tried);
  EXPECT_EQ(tried->blob, theirs);
  plan.busy(tried->id);
  EXPECT_EQ(plan.in_flight(), 0u);
  auto next = plan.next();
  ASSERT_TRUE(next) << "the busy blob must not hold the only blob slot";
  EXPECT_EQ(next->blob, ours);
  IntervalSet all;
  all.add(0, 10 * MiB);
  plan.opened(ours, all);  // (as if an interrupted pull had left all of it)
  plan.release(next->id);
  EXPECT_TRUE(plan.complete(ours));
  EXPECT_FALSE(plan.next()) << "not before retry_busy()";
  plan.retry_busy();
  auto again = plan.next();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->blob, theirs);
}

// For a rootfs made while downloading: blobs in the order added, whatever
// their sizes, and each blob's fresh bytes from its lowest offset.
TEST(RangePlan, InOrderFollowsTheReader) {
  RangePlan plan({.min_split_bytes = MiB, .biggest_first = false, .in_order = true, .now = frozen});
  plan.set_connections(2);
  size_t base = plan.add_blob(10 * MiB, 0, true);
  IntervalSet middle_held;
  middle_held.add(4 * MiB, 8 * MiB);
  plan.add_blob(100 * MiB, 0, true);
  auto first = plan.next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->blob, base) << "the first layer, not the biggest";
  RangePlan holes({.min_split_bytes = MiB, .biggest_first = false, .in_order = true, .now = frozen});
  size_t blob = holes.add_blob(16 * MiB, 0, true, middle_held);
  auto low = holes.next();
  ASSERT_TRUE(low);
  EXPECT_EQ(low->blob, blob);
  EXPECT_EQ(low->start, 0u) << "the gap before 4 MiB, though the one after 8 MiB is larger";
}

TEST(RangePlan, TheBiggestBlobStartsFirst) {
  RangePlan plan({.min_split_bytes = MiB, .now = frozen});
  size_t small = plan.add_blob(10 * MiB, 0, true);
  size_t big = plan.add_blob(100 * MiB, 0, true);
  EXPECT_EQ(plan.next()->blob, big);
  EXPECT_EQ(plan.next()->blob, small);
}

TEST(RangePlan, AFreeConnectionTakesHalfOfTheLargestRangeInFlight) {
  RangePlan plan({.min_split_bytes = MiB, .now = frozen});
  plan.add_blob(64 * MiB, 0, true);
  auto a = *plan.next();
  EXPECT_EQ(a.start, 0u);
  EXPECT_EQ(a.end, 64 * MiB);
  EXPECT_TRUE(a.ranged);
  receive(plan, a, 8 * MiB);
  auto b = *plan.next();  // splits what a has left: [8, 64) -> a keeps [8, 36)
  EXPECT_EQ(b.start, 36 * MiB);
  EXPECT_EQ(b.end, 64 * MiB);
  receive(plan, b, MiB);
  auto c = *plan.next();  // the largest left is a's [8, 36) (b has [37, 64)): halved at 22
  EXPECT_EQ(c.start, 22 * MiB);
  EXPECT_EQ(c.end, 36 * MiB);
  // a may keep 14 MiB more, not a byte beyond its new end.
  EXPECT_EQ(plan.accept(a.id, 100 * MiB), 14 * MiB);
  EXPECT_EQ(plan.accept(a.id, 1), 0u) << "the piece is over: its connection stops";
}

TEST(RangePlan, NothingBelowTwiceTheMinimumIsSplit) {
  RangePlan plan({.min_split_bytes = 4 * MiB, .now = frozen});
  plan.add_blob(7 * MiB, 0, true);
  auto a = *plan.next();
  EXPECT_FALSE(plan.next());
  receive(plan, a, MiB);
  EXPECT_FALSE(plan.next());
}

TEST(RangePlan, WhatAConnectionDidNotWriteGoesBack) {
  RangePlan plan({.min_split_bytes = 64 * MiB, .now = frozen});
  size_t blob = plan.add_blob(10 * MiB, 0, true);
  auto a = *plan.next();
  receive(plan, a, 3 * MiB);
  plan.written(a.id, 2 * MiB);  // 1 MiB received but lost (the connection dropped)
  plan.release(a.id);
  EXPECT_EQ(plan.contiguous(blob), 2 * MiB);
  auto again = *plan.next();
  EXPECT_EQ(again.start, 2 * MiB);
  EXPECT_EQ(again.end, 10 * MiB);
  receive(plan, again, 8 * MiB);
  EXPECT_TRUE(plan.written(again.id, 10 * MiB));
  EXPECT_TRUE(plan.complete(blob));
}

TEST(RangePlan, AResumedBlobFetchesOnlyItsHoles) {
  RangePlan plan({.min_split_bytes = 64 * MiB, .now = frozen});
  IntervalSet held;
  held.add(0, 4 * MiB);
  held.add(6 * MiB, 10 * MiB);
  size_t blob = plan.add_blob(12 * MiB, 0, true, held);
  auto a = *plan.next();
  plan.answered(a.id);
  auto b = *plan.next();
  EXPECT_EQ(std::min(a.start, b.start), 4 * MiB);
  EXPECT_EQ(std::max(a.start, b.start), 10 * MiB);
  EXPECT_FALSE(plan.next());
  EXPECT_EQ(plan.received(blob), 8 * MiB);
}

TEST(RangePlan, ACarrierOfTheWholeBlobStopsTheOthers) {
  RangePlan plan({.min_split_bytes = MiB, .now = frozen});
  size_t blob = plan.add_blob(64 * MiB, 0, true);
  auto a = *plan.next();
  plan.answered(a.id);
  auto b = *plan.next();  // [32, 64)
  receive(plan, a, MiB);
  EXPECT_TRUE(plan.carry_whole(b.id));  // b's answer was 200: the whole blob
  EXPECT_FALSE(plan.carry_whole(a.id)) << "one carrier only";
  EXPECT_EQ(plan.accept(a.id, 1), 0u) << "a stops";
  plan.written(a.id, MiB);
  plan.release(a.id);
  EXPECT_FALSE(plan.next()) << "the carrier has it all; never split again";
  EXPECT_EQ(plan.accept(b.id, 64 * MiB), 64 * MiB);
  EXPECT_TRUE(plan.written(b.id, 64 * MiB));
  EXPECT_EQ(plan.received(blob), 64 * MiB) << "no byte counted twice";
}

TEST(RangePlan, AResetBlobIsFetchedAgainFromItsFirstByte) {
  RangePlan plan({.min_split_bytes = 64 * MiB, .now = frozen});
  size_t blob = plan.add_blob(10 * MiB, 0, true);
  auto a = *plan.next();
  receive(plan, a, 10 * MiB);
  plan.written(a.id, 10 * MiB);
  plan.release(a.id);
  plan.reset_blob(blob);
  EXPECT_FALSE(plan.complete(blob));
  auto again = *plan.next();
  EXPECT_EQ(again.start, 0u);
  EXPECT_EQ(again.end, 10 * MiB);
}

TEST(RangePlan, AtMostSoManyBlobsAtOnceTheRestSplits) {
  RangePlan plan({.min_split_bytes = MiB, .max_blobs_in_flight = 1, .now = frozen});
  size_t big = plan.add_blob(64 * MiB, 0, true);
  size_t other = plan.add_blob(32 * MiB, 0, true);
  auto a = *plan.next();
  EXPECT_EQ(a.blob, big);
  plan.answered(a.id);
  auto b = *plan.next();
  EXPECT_EQ(b.blob, big) << "the second blob waits; the first is split";
  EXPECT_TRUE(plan.has_work());
  receive(plan, a, 32 * MiB);
  plan.written(a.id, 32 * MiB);
  receive(plan, b, 32 * MiB);
  plan.written(b.id, 64 * MiB);
  plan.release(a.id);
  plan.release(b.id);
  EXPECT_TRUE(plan.complete(big));
  EXPECT_EQ(plan.next()->blob, other);
}

TEST(RangePlan, FreshRangesAreEqualSharesForTheConnections) {
  RangePlan plan({.min_split_bytes = MiB, .now = frozen});
  plan.set_connections(4);
  plan.add_blob(64 * MiB, 0, true);
  auto a = *plan.next();
  EXPECT_EQ(a.end - a.start, 16 * MiB);
  EXPECT_FALSE(plan.next()) << "the rest waits for the first answer";
  plan.answered(a.id);
  for (uint64_t start : {16 * MiB, 32 * MiB, 48 * MiB}) {
    auto p = *plan.next();
    EXPECT_EQ(p.start, start) << "disjoint, nobody cut short";
    EXPECT_EQ(plan.accept(p.id, 64 * MiB), 16 * MiB);
  }
}

TEST(RangePlan, NoSplitBeforeTheFirstAnswer) {
  RangePlan plan({.min_split_bytes = MiB, .now = frozen});
  plan.add_blob(64 * MiB, 0, true);
  auto a = *plan.next();
  EXPECT_FALSE(plan.next()) << "Range support and a redirect are not known yet";
  plan.answered(a.id);
  EXPECT_TRUE(plan.next());
}

// A blob whose connection will finish it soon is not spread over idle
// connections (loopback, a fast link); a slow one is, at once.
TEST(RangePlan, AFastBlobIsNotSpreadOverIdleConnections) {
  for (bool fast : {true, false}) {
    std::chrono::steady_clock::time_point t{};
    RangePlan plan({.min_split_bytes = MiB, .min_split_seconds = 0.25, .rate_window_seconds = 0.005, .now = [&] { return t; }});
    plan.set_connections(4);
    plan.add_blob(64 * MiB, 0, true);
    auto first = *plan.next();
    EXPECT_EQ(first.end - first.start, 16 * MiB) << "an equal share for each of the 4 connections";
    t += std::chrono::milliseconds(50);  // the request's round trip: not part of the rate
    receive(plan, first, 64 * 1024);
    t += std::chrono::milliseconds(10);
    receive(plan, first, fast ? 8 * MiB : 64 * 1024);  // 800 MiB/s, or 6.4 MiB/s
    auto second = plan.next();
    if (fast) {
      EXPECT_FALSE(second) << "the other 56 MiB take its connection 70 ms";
      plan.written(first.id, first.end);
      t += std::chrono::milliseconds(10);
      receive(plan, first, 8 * MiB - 128 * 1024);  // the rest of its 16 MiB, as fast
      plan.written(first.id, first.end);
      plan.release(first.id);
      auto rest = plan.next();
      ASSERT_TRUE(rest);
      EXPECT_EQ(rest->start, 16 * MiB);
      EXPECT_EQ(rest->end, 64 * MiB) << "one connection takes the fast blob's rest whole";
    } else {
      ASSERT_TRUE(second) << "the rest would take its connection 10 s";
      EXPECT_EQ(second->start, 16 * MiB);
      EXPECT_TRUE(plan.next()) << "a piece with no bytes yet counts as fast as the first, not as unknown";
    }
  }
}

// Until a blob's connection has received for rate_window_seconds, its rate is
// not known and no other connection joins it.
TEST(RangePlan, ABlobIsNotSpreadWhileItsRateIsMeasured) {
  std::chrono::steady_clock::time_point t{};
  RangePlan plan({.min_split_bytes = MiB, .rate_window_seconds = 0.02, .now = [&] { return t; }});
  plan.set_connections(4);
  plan.add_blob(64 * MiB, 0, true);
  auto first = *plan.next();
  receive(plan, first, 64 * 1024);
  t += std::chrono::milliseconds(10);
  receive(plan, first, 64 * 1024);
  EXPECT_FALSE(plan.next()) << "10 ms of bytes are not a rate yet";
  t += std::chrono::milliseconds(20);
  receive(plan, first, 64 * 1024);  // 4 MiB/s: 2 minutes for the rest
  EXPECT_TRUE(plan.next());
}

TEST(RangePlan, FastRangesAreLeftToFinish) {
  std::chrono::steady_clock::time_point t{};
  RangePlan plan({.min_split_bytes = MiB, .min_split_seconds = 0.25, .now = [&] { return t; }});
  plan.add_blob(64 * MiB, 0, true);
  auto a = *plan.next();
  receive(plan, a, 64 * 1024);  // its first bytes: the rate is measured from here
  t += std::chrono::milliseconds(100);
  receive(plan, a, 32 * MiB);  // 320 MiB/s: the other 32 MiB take 0.1 s
  EXPECT_FALSE(plan.next());
  t += std::chrono::seconds(10);  // now 3.2 MiB/s: 10 s left
  EXPECT_TRUE(plan.next());
}

TEST(RangePlan, ABlobOfNoBytesNeedsNoRequest) {
  RangePlan plan({.now = frozen});
  size_t blob = plan.add_blob(0, 0, false);
  EXPECT_TRUE(plan.complete(blob));
  EXPECT_FALSE(plan.next());
}

}  // namespace
}  // namespace imgpull
