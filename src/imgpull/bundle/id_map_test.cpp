#include "bundle/id_map.h"

#include <gtest/gtest.h>

namespace imgpull::bundle {
namespace {

TEST(SubordinateIds, ByNameOrByUidInFileOrder) {
  std::string text =
      "alice:100000:65536\n"
      "bob:165536:65536\n"
      "1001:300000:1000\n"
      "alice:bad:10\n"
      "alice:400000:0\n"
      ":500000:10\n"
      "alice\n"
      "alice:200000:5";
  EXPECT_EQ(parse_subordinate_ids(text, "alice", 1001),
            (std::vector<SubordinateRange>{{100000, 65536}, {300000, 1000}, {200000, 5}}));
  EXPECT_EQ(parse_subordinate_ids(text, "bob", 1002), (std::vector<SubordinateRange>{{165536, 65536}}));
  EXPECT_TRUE(parse_subordinate_ids(text, "", 7).empty()) << "a user without a name has no named ranges";
  EXPECT_TRUE(parse_subordinate_ids("", "alice", 1001).empty());
}

TEST(RootlessMappings, CallerIsRootThenTheRanges) {
  std::vector<SubordinateRange> ranges{{100000, 65536}, {300000, 1000}};
  EXPECT_EQ(rootless_mappings(1001, ranges),
            (std::vector<IdMapping>{{0, 1001, 1}, {1, 100000, 65536}, {65537, 300000, 1000}}));
  EXPECT_EQ(rootless_mappings(1001, {}), (std::vector<IdMapping>{{0, 1001, 1}}));
}

TEST(RootlessMappings, SkipsARangeHoldingTheCallerAndStaysInBounds) {
  std::vector<SubordinateRange> holding{{1000, 10}, {5000, 2}};
  EXPECT_EQ(rootless_mappings(1005, holding), (std::vector<IdMapping>{{0, 1005, 1}, {1, 5000, 2}}));
  std::vector<SubordinateRange> past_the_last_host_id{{0xFFFFFF00, 0x100}};
  EXPECT_EQ(rootless_mappings(1, past_the_last_host_id).size(), 1u);
  std::vector<SubordinateRange> huge{{1, 0xFFFFFFF8}, {10, 10}, {30, 10}};
  auto clamped = rootless_mappings(0xFFFFFFFA, huge);
  ASSERT_EQ(clamped.size(), 3u) << "no container ids left for the third range";
  EXPECT_EQ(clamped[2], (IdMapping{0xFFFFFFF9, 10, 6})) << "the second cut to what is left";
  std::vector<SubordinateRange> many(1000, SubordinateRange{100000, 1});
  EXPECT_EQ(rootless_mappings(1, many).size(), kMaxIdMapLines);
}

TEST(UserNamespace, MapsWhatTheMappingsCover) {
  UserNamespace ns{rootless_mappings(1001, std::vector<SubordinateRange>{{100000, 100}}), {{0, 1001, 1}}};
  EXPECT_TRUE(ns.maps_uid(0));
  EXPECT_TRUE(ns.maps_uid(100));
  EXPECT_FALSE(ns.maps_uid(101));
  EXPECT_TRUE(ns.maps_gid(0));
  EXPECT_FALSE(ns.maps_gid(1));
}

}  // namespace
}  // namespace imgpull::bundle
