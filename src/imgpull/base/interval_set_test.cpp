#include "base/interval_set.h"

#include <gtest/gtest.h>

namespace imgpull {
namespace {

TEST(IntervalSet, MergesWhatTouchesOrOverlaps) {
  IntervalSet s;
  s.add(10, 20);
  s.add(30, 40);
  s.add(20, 25);  // touches the first
  EXPECT_EQ(s.intervals(), (std::vector<Interval>{{10, 25}, {30, 40}}));
  s.add(5, 35);  // swallows both
  EXPECT_EQ(s.intervals(), (std::vector<Interval>{{5, 40}}));
  s.add(50, 50);  // empty: nothing
  EXPECT_EQ(s.total(), 35u);
}

TEST(IntervalSet, ContiguousFromIsThePrefixAHasherMayRead) {
  IntervalSet s;
  EXPECT_EQ(s.contiguous_from(0), 0u);
  s.add(100, 200);
  EXPECT_EQ(s.contiguous_from(0), 0u);
  s.add(0, 100);
  EXPECT_EQ(s.contiguous_from(0), 200u);
  EXPECT_EQ(s.contiguous_from(150), 200u);
  EXPECT_EQ(s.contiguous_from(200), 200u);
}

TEST(IntervalSet, GapsAreWhatIsMissingInOrder) {
  IntervalSet s;
  s.add(10, 20);
  s.add(30, 40);
  EXPECT_EQ(s.gaps(0, 50), (std::vector<Interval>{{0, 10}, {20, 30}, {40, 50}}));
  EXPECT_EQ(s.gaps(15, 35), (std::vector<Interval>{{20, 30}}));
  EXPECT_EQ(s.gaps(10, 20), (std::vector<Interval>{}));
}

}  // namespace
}  // namespace imgpull
