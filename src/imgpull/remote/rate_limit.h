// What a registry says about its rate limit, read from the headers of its
// answer, and what a user is told when a registry refused a request with 429.
//
// Docker Hub counts manifest GETs (not HEADs) per 6 hours, per address for
// anonymous users and per account once logged in, and says so on every
// manifest answer:
//
//  RateLimit-Limit: 100;w=21600         100 pulls per window of 21600 s
//  RateLimit-Remaining: 76;w=21600
//  Docker-RateLimit-Source: 192.0.2.7   whose allowance is counted
//
// The IETF draft those headers follow adds RateLimit-Reset (seconds until the
// window resets). Every figure shown comes from these headers (or
// Retry-After); nothing is assumed about any registry's allowance.
//
//   if (response.status == 429) {
//     message += "; " + explain_rate_limit(parse_rate_limit(response), retry_after);
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "remote/http.h"

namespace imgpull {

// "100;w=21600": a count, and the window it is counted over when given.
struct RateLimitFigure {
  uint64_t count = 0;
  std::optional<std::chrono::seconds> window;
};

struct RateLimit {
  std::optional<RateLimitFigure> limit;      // RateLimit-Limit
  std::optional<RateLimitFigure> remaining;  // RateLimit-Remaining
  std::optional<std::chrono::seconds> reset;  // RateLimit-Reset: until the window resets
  std::string source;                         // Docker-RateLimit-Source
};

// nullopt when `value` does not start with a count.
std::optional<RateLimitFigure> parse_rate_limit_figure(std::string_view value);

RateLimit parse_rate_limit(const http::Response& response);

// "6 hours", "hour", "15 minutes", "90 seconds": a window, as in "100 per 6 hours".
std::string describe_window(std::chrono::seconds window);

// What to add to the error of a request the registry refused with 429: its
// limit and what remains (only the figures it sent; when it sent none, a
// sentence saying so), when it resets or asks to be asked again, and what
// helps (logging in, a mirror).
std::string explain_rate_limit(const RateLimit& limit, std::optional<std::chrono::seconds> retry_after);

}  // namespace imgpull
