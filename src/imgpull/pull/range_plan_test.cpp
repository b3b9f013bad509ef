#include "pull/range_plan.h"

#include <gtest/gtest.h>

namespace imgpull {
namespace {

constexpr uint64_t MiB = 1 << 20;

// Receives and writes `n` bytes of a piece, as a connection would.
void receive(RangePlan& plan, const Piece& p, uint64_t n) {
  uint64_t got = plan.accept(p.id, n);
  ASSERT_EQ(got, n);
}

TEST(RangePlan, SmallBlobsAreWholeAndUrgentOnesGoFirst) {
  RangePlan plan({.min_split_bytes = 4 * MiB});
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

TEST(RangePlan, TheBiggestBlobStartsFirst) {
  RangePlan plan({.min_split_bytes = MiB});
  size_t small = plan.add_blob(10 * MiB, 0, true);
  size_t big = plan.add_blob(100 * MiB, 0, true);
  EXPECT_EQ(plan.next()->blob, big);
  EXPECT_EQ(plan.next()->blob, small);
}

TEST(RangePlan, AFreeConnectionTakesHalfOfTheLargestRangeInFlight) {
  RangePlan plan({.min_split_bytes = MiB});
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
  RangePlan plan({.min_split_bytes = 4 * MiB});
  plan.add_blob(7 * MiB, 0, true);
  auto a = *plan.next();
  EXPECT_FALSE(plan.next());
  receive(plan, a, MiB);
  EXPECT_FALSE(plan.next());
}

TEST(RangePlan, WhatAConnectionDidNotWriteGoesBack) {
  RangePlan plan({.min_split_bytes = 64 * MiB});
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
  RangePlan plan({.min_split_bytes = 64 * MiB});
  IntervalSet held;
  held.add(0, 4 * MiB);
  held.add(6 * MiB, 10 * MiB);
  size_t blob = plan.add_blob(12 * MiB, 0, true, held);
  auto a = *plan.next();
  auto b = *plan.next();
  EXPECT_EQ(std::min(a.start, b.start), 4 * MiB);
  EXPECT_EQ(std::max(a.start, b.start), 10 * MiB);
  EXPECT_FALSE(plan.next());
  EXPECT_EQ(plan.received(blob), 8 * MiB);
}

TEST(RangePlan, ACarrierOfTheWholeBlobStopsTheOthers) {
  RangePlan plan({.min_split_bytes = MiB});
  size_t blob = plan.add_blob(64 * MiB, 0, true);
  auto a = *plan.next();
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
  RangePlan plan({.min_split_bytes = 64 * MiB});
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
  RangePlan plan({.min_split_bytes = MiB, .max_blobs_in_flight = 1});
  size_t big = plan.add_blob(64 * MiB, 0, true);
  size_t other = plan.add_blob(32 * MiB, 0, true);
  auto a = *plan.next();
  EXPECT_EQ(a.blob, big);
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

TEST(RangePlan, ABlobOfNoBytesNeedsNoRequest) {
  RangePlan plan({});
  size_t blob = plan.add_blob(0, 0, false);
  EXPECT_TRUE(plan.complete(blob));
  EXPECT_FALSE(plan.next());
}

}  // namespace
}  // namespace imgpull
