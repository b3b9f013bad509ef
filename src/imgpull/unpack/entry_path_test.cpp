#include "unpack/entry_path.h"

#include <gtest/gtest.h>

namespace imgpull::unpack {
namespace {

using P = PathComponents;

TEST(UnpackPathTest, CleansNames) {
  EXPECT_EQ(clean_entry_path("etc/passwd"), (P{"etc", "passwd"}));
  EXPECT_EQ(clean_entry_path("./etc/passwd"), (P{"etc", "passwd"}));
  EXPECT_EQ(clean_entry_path("/etc/passwd"), (P{"etc", "passwd"}));
  EXPECT_EQ(clean_entry_path("//etc//./passwd/"), (P{"etc", "passwd"}));
  EXPECT_EQ(clean_entry_path("etc/x/../passwd"), (P{"etc", "passwd"}));
  EXPECT_EQ(clean_entry_path("...") , (P{"..."}));
  EXPECT_EQ(clean_entry_path(".hidden/..x"), (P{".hidden", "..x"}));
}

TEST(UnpackPathTest, DotDotIsClampedAtTheRoot) {
  EXPECT_EQ(clean_entry_path("../etc/passwd"), (P{"etc", "passwd"}));
  EXPECT_EQ(clean_entry_path("../../../../etc/passwd"), (P{"etc", "passwd"}));
  EXPECT_EQ(clean_entry_path("/../victim/x"), (P{"victim", "x"}));
  EXPECT_EQ(clean_entry_path("a/../../b"), (P{"b"}));
  EXPECT_EQ(clean_entry_path("dne/../.wh.etc"), (P{".wh.etc"}));
}

TEST(UnpackPathTest, NamesOfTheRootAreEmpty) {
  for (const char* name : {"", ".", "./", "/", "..", "../..", "a/..", "a/b/../../..", "/./"}) {
    EXPECT_TRUE(clean_entry_path(name).empty()) << name;
  }
}

TEST(UnpackPathTest, Joins) {
  EXPECT_EQ(join_components(P{}), "");
  EXPECT_EQ(join_components(P{"a"}), "a");
  EXPECT_EQ(join_components(P{"a", "b", "c"}), "a/b/c");
}

TEST(UnpackPathTest, ClassifiesWhiteouts) {
  EXPECT_EQ(classify_whiteout("passwd").kind, WhiteoutKind::kNone);
  EXPECT_EQ(classify_whiteout(".whatever").kind, WhiteoutKind::kNone);
  EXPECT_EQ(classify_whiteout(".wh").kind, WhiteoutKind::kNone);

  Whiteout w = classify_whiteout(".wh.passwd");
  EXPECT_EQ(w.kind, WhiteoutKind::kRemove);
  EXPECT_EQ(w.target, "passwd");
  EXPECT_EQ(classify_whiteout(".wh....").target, "...");

  EXPECT_EQ(classify_whiteout(".wh..wh..opq").kind, WhiteoutKind::kOpaque);
  EXPECT_EQ(classify_whiteout(".wh..wh.plnk").kind, WhiteoutKind::kMeta);
  EXPECT_EQ(classify_whiteout(".wh..wh..opqx").kind, WhiteoutKind::kMeta);
}

TEST(UnpackPathTest, WhiteoutsOfDotAndDotDotAreInvalid) {
  EXPECT_EQ(classify_whiteout(".wh.").kind, WhiteoutKind::kInvalid);
  EXPECT_EQ(classify_whiteout(".wh..").kind, WhiteoutKind::kInvalid);
  EXPECT_EQ(classify_whiteout(".wh...").kind, WhiteoutKind::kInvalid);
}

}  // namespace
}  // namespace imgpull::unpack
