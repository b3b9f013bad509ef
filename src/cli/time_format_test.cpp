#include "time_format.h"

#include <gtest/gtest.h>

#include <ctime>

namespace imgpull::cli {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

// 2024-03-01T12:00:00Z
Clock::time_point at_noon() {
  std::tm tm{};
  tm.tm_year = 2024 - 1900;
  tm.tm_mon = 2;
  tm.tm_mday = 1;
  tm.tm_hour = 12;
  return Clock::from_time_t(timegm(&tm));
}

// The RFC 3339 UTC time `ago` before at_noon().
std::string before_noon(Clock::duration ago) {
  std::time_t t = Clock::to_time_t(at_noon() - ago);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

TEST(HumanAge, NoTimeIsNA) {
  EXPECT_EQ(human_age("", at_noon()), "N/A");
  EXPECT_EQ(human_age("yesterday", at_noon()), "N/A");
}

TEST(HumanAge, SecondsAndMinutes) {
  EXPECT_EQ(human_age(before_noon(0s), at_noon()), "Less than a second ago");
  EXPECT_EQ(human_age(before_noon(1s), at_noon()), "1 second ago");
  EXPECT_EQ(human_age(before_noon(59s), at_noon()), "59 seconds ago");
  EXPECT_EQ(human_age(before_noon(60s), at_noon()), "About a minute ago");
  EXPECT_EQ(human_age(before_noon(90s), at_noon()), "2 minutes ago");
  EXPECT_EQ(human_age(before_noon(45min), at_noon()), "45 minutes ago");
}

TEST(HumanAge, HoursDaysWeeksMonthsYears) {
  EXPECT_EQ(human_age(before_noon(60min), at_noon()), "About an hour ago");
  EXPECT_EQ(human_age(before_noon(47h), at_noon()), "47 hours ago");
  EXPECT_EQ(human_age(before_noon(48h), at_noon()), "2 days ago");
  EXPECT_EQ(human_age(before_noon(13 * 24h), at_noon()), "13 days ago");
  EXPECT_EQ(human_age(before_noon(14 * 24h), at_noon()), "2 weeks ago");
  EXPECT_EQ(human_age(before_noon(59 * 24h), at_noon()), "8 weeks ago");
  EXPECT_EQ(human_age(before_noon(60 * 24h), at_noon()), "2 months ago");
  EXPECT_EQ(human_age(before_noon(729 * 24h), at_noon()), "24 months ago");
  EXPECT_EQ(human_age(before_noon(730 * 24h), at_noon()), "2 years ago");
}

TEST(HumanAge, FractionsOfASecondAreNotRead) {
  EXPECT_EQ(human_age("2024-03-01T11:59:30.999999999Z", at_noon()), "30 seconds ago");
}

TEST(HumanAge, ATimeAfterNowIsLessThanASecond) {
  EXPECT_EQ(human_age("2024-03-02T12:00:00Z", at_noon()), "Less than a second ago");
}

TEST(DockerTime, GoTimeStringInUtc) {
  EXPECT_EQ(docker_time("2023-10-02T11:22:33.123456Z"), "2023-10-02 11:22:33 +0000 UTC");
  EXPECT_EQ(docker_time("1970-01-01T00:00:00Z"), "1970-01-01 00:00:00 +0000 UTC");
}

TEST(DockerTime, NoTimeIsEmpty) {
  EXPECT_EQ(docker_time(""), "");
  EXPECT_EQ(docker_time("2023-10-02"), "");
}

}  // namespace
}  // namespace imgpull::cli
