#include "time_format.h"

#include <ctime>
#include <optional>

#include <fmt/format.h>

namespace imgpull::cli {
namespace {

// The date and time of an RFC 3339 string; fractions and the offset are not read.
std::optional<std::tm> parse_time(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.empty() || strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return std::nullopt;
  return tm;
}

}  // namespace

std::string human_age(const std::string& rfc3339, std::chrono::system_clock::time_point now) {
  std::optional<std::tm> tm = parse_time(rfc3339);
  if (!tm) return "N/A";
  auto created = std::chrono::system_clock::from_time_t(timegm(&*tm));
  double seconds = std::chrono::duration<double>(now - created).count();
  auto hours = static_cast<long>(seconds / 3600 + 0.5);
  std::string d;
  if (seconds < 1) d = "Less than a second";
  else if (seconds < 2) d = "1 second";
  else if (seconds < 60) d = fmt::format("{} seconds", static_cast<long>(seconds));
  else if (seconds / 60 < 1.5) d = "About a minute";
  else if (seconds / 60 < 60) d = fmt::format("{} minutes", static_cast<long>(seconds / 60 + 0.5));
  else if (hours == 1) d = "About an hour";
  else if (hours < 48) d = fmt::format("{} hours", hours);
  else if (hours < 24 * 7 * 2) d = fmt::format("{} days", hours / 24);
  else if (hours < 24 * 30 * 2) d = fmt::format("{} weeks", hours / 24 / 7);
  else if (hours < 24 * 365 * 2) d = fmt::format("{} months", hours / 24 / 30);
  else d = fmt::format("{} years", hours / 24 / 365);
  return d + " ago";
}

std::string docker_time(const std::string& rfc3339) {
  std::optional<std::tm> tm = parse_time(rfc3339);
  if (!tm) return "";
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S +0000 UTC", &*tm);
  return buf;
}

}  // namespace imgpull::cli
