#include "remote/rate_limit.h"

#include <fmt/format.h>

#include <charconv>

namespace imgpull {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<uint64_t> parse_count(std::string_view text) {
  text = trim(text);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string plural(uint64_t n, std::string_view unit) {
  return fmt::format("{} {}{}", n, unit, n == 1 ? "" : "s");
}

// "3 hours 20 minutes", "12 minutes", "45 seconds": how long until something.
std::string describe_wait(std::chrono::seconds wait) {
  auto s = static_cast<uint64_t>(std::max<int64_t>(0, wait.count()));
  if (s < 120) return plural(s, "second");
  if (s < 2 * 3600) return plural((s + 59) / 60, "minute");
  uint64_t minutes = (s % 3600 + 59) / 60;
  std::string out = plural(s / 3600, "hour");
  // Appended piecewise: `" " + plural(...)` trips GCC 12's -Wrestrict false positive at -O3.
  if (minutes > 0) out.append(" ").append(plural(minutes, "minute"));
  return out;
}

// "100 per 6 hours"; the window is left out when `shown_window` said it already.
std::string describe_figure(const RateLimitFigure& figure, const std::optional<std::chrono::seconds>& shown_window) {
  std::string text = std::to_string(figure.count);
  if (figure.window && figure.window != shown_window) text += " per " + describe_window(*figure.window);
  return text;
}

}  // namespace

std::optional<RateLimitFigure> parse_rate_limit_figure(std::string_view value) {
  std::string_view rest = value;
  auto semi = rest.find(';');
  auto count = parse_count(rest.substr(0, semi));
  if (!count) return std::nullopt;
  RateLimitFigure figure{*count, std::nullopt};
  while (semi != std::string_view::npos) {
    rest.remove_prefix(semi + 1);
    semi = rest.find(';');
    std::string_view param = trim(rest.substr(0, semi));
    if (param.starts_with("w=")) {
      if (auto window = parse_count(param.substr(2)); window && *window > 0) {
        figure.window = std::chrono::seconds(static_cast<int64_t>(*window));
      }
    }
  }
  return figure;
}

RateLimit parse_rate_limit(const http::Response& response) {
  RateLimit limit;
  limit.limit = parse_rate_limit_figure(response.header("ratelimit-limit"));
  limit.remaining = parse_rate_limit_figure(response.header("ratelimit-remaining"));
  if (auto reset = parse_count(response.header("ratelimit-reset"))) {
    limit.reset = std::chrono::seconds(static_cast<int64_t>(*reset));
  }
  limit.source = std::string(trim(response.header("docker-ratelimit-source")));
  return limit;
}

std::string describe_window(std::chrono::seconds window) {
  auto s = static_cast<uint64_t>(std::max<int64_t>(0, window.count()));
  auto unit = [](uint64_t n, std::string_view name) { return n == 1 ? std::string(name) : plural(n, name); };
  if (s > 0 && s % 3600 == 0) return unit(s / 3600, "hour");
  if (s > 0 && s % 60 == 0) return unit(s / 60, "minute");
  return unit(s, "second");
}

std::string explain_rate_limit(const RateLimit& limit, std::optional<std::chrono::seconds> retry_after) {
  std::string text;
  if (limit.limit || limit.remaining) {
    std::optional<std::chrono::seconds> window;
    text = "the registry's rate limit: ";
    if (limit.limit) {
      text += "limit " + describe_figure(*limit.limit, window);
      window = limit.limit->window;
    }
    if (limit.remaining) text += (limit.limit ? ", " : "") + describe_figure(*limit.remaining, window) + " remaining";
  } else {
    text = "the registry limits how often it may be asked (it sent no RateLimit-Limit or RateLimit-Remaining "
           "header saying how often)";
  }
  if (!limit.source.empty()) text += fmt::format(", counted for {}", limit.source);
  if (limit.reset) text += "; it resets in " + describe_wait(*limit.reset);
  if (retry_after) text += "; it asks to wait " + describe_wait(*retry_after) + " (Retry-After)";
  return text + "; log in (imgpull login) for a higher limit, or use a mirror (hosts.toml)";
}

}  // namespace imgpull
