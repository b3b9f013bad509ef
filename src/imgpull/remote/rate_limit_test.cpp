#include "remote/rate_limit.h"

#include <gtest/gtest.h>

namespace imgpull {
namespace {

using std::chrono::seconds;

http::Response answer(std::vector<std::pair<std::string, std::string>> headers) {
  http::Response r;
  r.status = 429;
  r.headers = std::move(headers);
  return r;
}

TEST(RateLimit, ParsesDockerHubFigures) {
  auto figure = parse_rate_limit_figure("100;w=21600");
  ASSERT_TRUE(figure);
  EXPECT_EQ(figure->count, 100u);
  EXPECT_EQ(figure->window, seconds(21600));
  EXPECT_EQ(parse_rate_limit_figure(" 7 ")->count, 7u);
  EXPECT_FALSE(parse_rate_limit_figure(" 7 ")->window);
  EXPECT_EQ(parse_rate_limit_figure("5; foo=1; w=60")->window, seconds(60));
  EXPECT_FALSE(parse_rate_limit_figure(""));
  EXPECT_FALSE(parse_rate_limit_figure("many"));
  EXPECT_FALSE(parse_rate_limit_figure("-1;w=60"));
  EXPECT_FALSE(parse_rate_limit_figure("5;w=soon")->window) << "a window that is no number is left out";
}

TEST(RateLimit, DescribesWindows) {
  EXPECT_EQ(describe_window(seconds(21600)), "6 hours");
  EXPECT_EQ(describe_window(seconds(3600)), "hour");
  EXPECT_EQ(describe_window(seconds(60)), "minute");
  EXPECT_EQ(describe_window(seconds(900)), "15 minutes");
  EXPECT_EQ(describe_window(seconds(90)), "90 seconds");
}

TEST(RateLimit, ExplainsTheFiguresTheRegistrySent) {
  auto limit = parse_rate_limit(answer({{"ratelimit-limit", "100;w=21600"},
                                        {"ratelimit-remaining", "0;w=21600"},
                                        {"docker-ratelimit-source", "192.0.2.7"},
                                        {"ratelimit-reset", "12000"}}));
  EXPECT_EQ(explain_rate_limit(limit, std::nullopt),
            "the registry's rate limit: limit 100 per 6 hours, 0 remaining, counted for 192.0.2.7; it resets in "
            "3 hours 20 minutes; log in (imgpull login) for a higher limit, or use a mirror (hosts.toml)");
  // Other figures, other words: nothing is assumed about any registry.
  auto other = parse_rate_limit(answer({{"ratelimit-limit", "200;w=3600"}, {"ratelimit-remaining", "3"}}));
  EXPECT_EQ(explain_rate_limit(other, seconds(45)),
            "the registry's rate limit: limit 200 per hour, 3 remaining; it asks to wait 45 seconds (Retry-After); "
            "log in (imgpull login) for a higher limit, or use a mirror (hosts.toml)");
}

TEST(RateLimit, SaysSoWhenTheRegistrySentNoFigures) {
  std::string text = explain_rate_limit(parse_rate_limit(answer({{"retry-after", "30"}})), std::nullopt);
  EXPECT_EQ(text,
            "the registry limits how often it may be asked (it sent no RateLimit-Limit or RateLimit-Remaining header "
            "saying how often); log in (imgpull login) for a higher limit, or use a mirror (hosts.toml)");
  EXPECT_EQ(text.find_first_of("0123456789"), std::string::npos) << "no figure it did not send";
}

}  // namespace
}  // namespace imgpull
