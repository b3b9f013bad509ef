#include "base/text.h"

#include <gtest/gtest.h>

namespace imgpull {
namespace {

TEST(Text, LowersAsciiOnly) {
  EXPECT_EQ(ascii_lowered("Bearer REALM=X"), "bearer realm=x");
  EXPECT_EQ(ascii_lowered("\xc3\x89t\xc3\xa9"), "\xc3\x89t\xc3\xa9");  // bytes >= 0x80 untouched
  EXPECT_EQ(ascii_lower('['), '[');
  EXPECT_EQ(ascii_lower('@'), '@');
}

TEST(Text, ComparesIgnoringAsciiCase) {
  EXPECT_TRUE(iequals("credsStore", "CREDSSTORE"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("auth", "auths"));
  EXPECT_FALSE(iequals("a", "b"));
}

TEST(Text, TrimsAsciiWhiteSpace) {
  EXPECT_EQ(trim_space(" \t\r\n\v\ftext with spaces \n"), "text with spaces");
  EXPECT_EQ(trim_space("  \n"), "");
  EXPECT_EQ(trim_space(""), "");
  EXPECT_EQ(trim_space("x"), "x");
}

TEST(Text, QuotesForOneLineMessages) {
  EXPECT_EQ(quoted("nginx"), "\"nginx\"");
  EXPECT_EQ(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quoted("line\n\x1b[2J\x7f\xff"), "\"line\\x0a\\x1b[2J\\x7f\\xff\"");
  EXPECT_EQ(quoted(':'), "\":\"");
  EXPECT_EQ(quoted(std::string_view("\0", 1)), "\"\\x00\"");
}

TEST(Text, CutsLongTextAndSaysHowLong) {
  EXPECT_EQ(quoted("abcdef", 3), "\"abc\"... (6 bytes)");
  EXPECT_EQ(quoted("abc", 3), "\"abc\"");
}

}  // namespace
}  // namespace imgpull
