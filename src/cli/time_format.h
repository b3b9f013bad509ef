// Times in an image's config (RFC 3339, "2024-05-01T12:00:00.123Z") as docker
// shows them. Both read the date and time and ignore fractions and the offset.
#pragma once

#include <chrono>
#include <string>

namespace imgpull::cli {

// go-units' HumanDuration from `rfc3339` to `now` + " ago", as docker prints
// CREATED: "5 minutes ago", "About an hour ago", "3 weeks ago"; "N/A" when
// there is no time.
std::string human_age(const std::string& rfc3339,
                      std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// Go's time.Time.String() in UTC, as docker's CreatedAt shows it:
// "2024-05-01 12:00:00 +0000 UTC"; "" when there is no time.
std::string docker_time(const std::string& rfc3339);

}  // namespace imgpull::cli
