#include "base/clock.h"

#include <gtest/gtest.h>

#include <ctime>
#include <regex>

namespace imgpull {
namespace {

TEST(Clock, NowIsRfc3339InUtcToTheSecond) {
  std::time_t before = std::time(nullptr);
  std::string now = now_rfc3339();
  std::time_t after = std::time(nullptr);
  ASSERT_TRUE(std::regex_match(now, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"))) << now;
  std::tm tm{};
  ASSERT_NE(::strptime(now.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm), nullptr);
  std::time_t parsed = ::timegm(&tm);
  EXPECT_GE(parsed, before);
  EXPECT_LE(parsed, after);
}

}  // namespace
}  // namespace imgpull
